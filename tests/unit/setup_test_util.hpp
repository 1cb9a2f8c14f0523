#pragma once
// Helpers for the registrar tests (tests/unit/test_setup_*.cpp): the context a registrar is handed,
// built against a fake provider API, and the checks every registrar's refusals share (checked before
// any call; no secret in the message).
#include "fakes.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/setup/registrar.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace alumia::setup::testing {

// What a RegistrarContext borrows, kept alive by the test: `Client` is the production client
// (http::HttplibClient, to a fake over loopback) or test::ScriptedHttp.
template <class Client>
struct RegistrarHarness {
  Client http;
  test::SeededRandom random;

  RegistrarContext context(std::string connection_id, std::string receive_url, std::string api_base,
                           std::string credential, std::string secret, nlohmann::json previous = nullptr) {
    return RegistrarContext{.connection_id = std::move(connection_id),
                            .receive_url = std::move(receive_url),
                            .api_base = std::move(api_base),
                            .credential = SecretBytes(std::move(credential)),
                            .secret = SecretBytes(std::move(secret)),
                            .previous = std::move(previous),
                            .http = http,
                            .random = random};
  }
};

// check() refuses `options` with VALIDATION_ERROR in words containing `words`, and apply() refuses
// them too.
inline void check_refused(const Registrar& registrar, const RegistrarContext& ctx, const SetupOptions& options,
                          const std::string& words) {
  INFO(words);
  auto st = registrar.check(options);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code == ErrorCode::validation_error);
  CHECK_THAT(st.error().message, Catch::Contains(words));
  CHECK_FALSE(registrar.apply(ctx, options).has_value());
}

// The error of an apply() that fails, checked to contain none of `hidden` (the credential, the secret).
inline Error apply_error(const Registrar& registrar, const RegistrarContext& ctx, const SetupOptions& options,
                         const std::vector<std::string>& hidden) {
  auto r = registrar.apply(ctx, options);
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().message);
  for (const auto& h : hidden)
    if (!h.empty()) CHECK(r.error().message.find(h) == std::string::npos);
  return r.error();
}

}  // namespace alumia::setup::testing
