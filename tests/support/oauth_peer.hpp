#pragma once
// The real authorization server for OAuth tests: oidc-provider (tests/support/oauth-peer) on
// 127.0.0.1:0, a connectors.d file that points a test connector (or a built-in one) at it, and the
// scripted browser that goes through its login and consent.
#include "process.hpp"
#include "skip.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace alumia::test {

// True when node and the peer's node_modules are present (`make test` installs them).
bool oauth_peer_available();

// Skips the test without the peer (tests/support/oauth-peer/install.sh), except under `make test`,
// which sets ALUMIA_REQUIRE_OAUTH_PEER: there a missing peer fails.
#define ALUMIA_SKIP_WITHOUT_OAUTH_PEER()                                                                      \
  do {                                                                                                        \
    if (!::alumia::test::oauth_peer_available())                                                              \
      ALUMIA_SKIP_UNLESS_REQUIRED("ALUMIA_REQUIRE_OAUTH_PEER",                                                \
                                  "oidc-provider is not installed: run tests/support/oauth-peer/install.sh"); \
  } while (false)

class OAuthPeer {
 public:
  explicit OAuthPeer(EnvOverrides env = {});
  ~OAuthPeer();
  const std::string& issuer() const { return m_issuer; }
  // Introspection (RFC 7662) of a token, authenticated as the test client.
  nlohmann::json introspect(const std::string& token) const;
  // How many token grants of this type (authorization_code, refresh_token) the peer has granted.
  int grants(const std::string& grant_type) const;
  std::string log() const { return m_proc->err(); }

 private:
  std::unique_ptr<Process> m_proc;
  std::string m_issuer;
};

// A connector's "oauth" object for the peer at `issuer`: its endpoints, PKCE, basic client auth,
// consent prompted, the account label from its /me (email).
nlohmann::json peer_oauth(const std::string& issuer);

// Writes connectors.d/<slug>.json for a connector backed by the peer. `extra` is merged into the
// connector's "oauth" object (e.g. extraAuthorizeParams, pkce).
void write_peer_connector(const std::filesystem::path& home, const std::string& slug, const std::string& issuer,
                          const nlohmann::json& oauth_extra = nlohmann::json::object());

// Writes connectors.d/<slug>.json as a patch of the built-in connector `slug` (merged over it by the
// daemon) that points its OAuth at the peer: peer_oauth() with `oauth_extra` merged in, objects
// member by member, where a null stays (in the patch it removes the built-in member).
void write_peer_patch(const std::filesystem::path& home, const std::string& slug, const std::string& issuer,
                      const nlohmann::json& oauth_extra = nlohmann::json::object());

// A $BROWSER wrapper that runs tests/support/fake-browser.mjs with its own jar and log.
std::filesystem::path write_browser_wrapper(const std::filesystem::path& dir);
// `env` plus what makes the CLI open the wrapper as the browser (`connect` runs the flow through it).
EnvOverrides browser_env(const std::filesystem::path& wrapper, EnvOverrides env = {});
// tests/support/fake-browser.mjs itself, for a browser with another jar than the wrapper's.
std::filesystem::path fake_browser_script();

// Puts the cookie of a Set-Cookie header answered by `url` into a fake-browser jar file, as the browser
// that received that answer would keep it (name, value and Path; session lifetime).
void jar_add_cookie(const std::filesystem::path& jar, const std::string& url, const std::string& set_cookie);

}  // namespace alumia::test
