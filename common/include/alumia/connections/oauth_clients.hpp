#pragma once
// The OAuth client (id and secret) of each OAuth connector: from the environment first
// (ALUMIA_<SLUG>_CLIENT_ID / _CLIENT_SECRET), then the encrypted store (`oauth-client set`).
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/store/store.hpp>

#include <optional>
#include <string>

namespace alumia {

struct OAuthClient {
  std::string client_id;
  SecretBytes client_secret;
};

// POST /api/v1/oauth-clients/:slug, as the handler parsed it.
struct SetOAuthClient {
  std::string client_id;
  SecretBytes client_secret;
};

class OAuthClients {
 public:
  OAuthClients(Store& store, const Sealer& sealer, EnvLookup env)
      : m_store(store), m_sealer(sealer), m_env(std::move(env)) {}

  Result<std::optional<OAuthClient>> find(const Connector& c) const;
  // An OAuth connector is configured when it has a client; every other connector always is.
  bool configured(const Connector& c) const;
  Status set(const Connector& c, const SetOAuthClient& client);
  Status unset(const Connector& c);

 private:
  Store& m_store;
  const Sealer& m_sealer;
  EnvLookup m_env;
};

}  // namespace alumia
