#pragma once
// What the relay worker and the webhook service know of each other, as two small interfaces, so that
// neither includes the other: the worker reads where an endpoint's jobs go (EndpointTargets, served
// by the endpoint cache), and the service tells the worker that a job became due (JobWaker,
// implemented by the worker). The jobs themselves the worker claims from the WebhookStore.
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>

#include <optional>
#include <string>

namespace alumia {

// Where a job of an endpoint goes and the key that signs it.
struct RelayTarget {
  std::string url;
  SecretBytes secret;
};

class EndpointTargets {
 public:
  virtual ~EndpointTargets() = default;
  // nullopt when the endpoint has no target (none of its own and no default) or is gone.
  virtual Result<std::optional<RelayTarget>> relay_target(const std::string& endpoint_id) = 0;
};

class JobWaker {
 public:
  virtual ~JobWaker() = default;
  // A job became due (a delivery, a replay, a retry, or a target that appeared); never blocks.
  virtual void jobs_due() = 0;
};

}  // namespace alumia
