#include "oauth_peer.hpp"

#include <alumia/crypto/crypto.hpp>
#include <alumia/net/http.hpp>

#include <csignal>
#include <fstream>
#include <stdexcept>

namespace alumia::test {
namespace fs = std::filesystem;

namespace {
const fs::path k_peer_dir = fs::path(ALUMIA_SOURCE_DIR) / "tests/support/oauth-peer";
}

bool oauth_peer_available() {
  return fs::exists("/usr/bin/node") && fs::exists(k_peer_dir / "node_modules/oidc-provider");
}

OAuthPeer::OAuthPeer(EnvOverrides env) {
  m_proc =
      std::make_unique<Process>(std::vector<std::string>{"/usr/bin/node", (k_peer_dir / "peer.mjs").string()}, env);
  const bool up = eventually(
      [&] {
        const std::string out = m_proc->out();
        const auto pos = out.find("READY ");
        if (pos == std::string::npos) return !m_proc->running();
        const auto end = out.find('\n', pos);
        if (end == std::string::npos) return false;
        m_issuer = out.substr(pos + 6, end - pos - 6);
        return true;
      },
      std::chrono::seconds(30));
  if (!up || m_issuer.empty()) throw std::runtime_error("oauth peer did not start: " + m_proc->err());
}

OAuthPeer::~OAuthPeer() {
  m_proc->signal(SIGTERM);
  m_proc->wait(std::chrono::seconds(10));
}

nlohmann::json OAuthPeer::introspect(const std::string& token) const {
  const std::string basic = "Basic " + encoding::base64_encode("alumia-test:test-only-secret");
  auto r =
      http_request("POST", m_issuer + "/token/introspection",
                   {{"Authorization", basic}, {"Content-Type", "application/x-www-form-urlencoded"}}, "token=" + token);
  return r.json();
}

int OAuthPeer::grants(const std::string& grant_type) const {
  auto r = http_request("GET", m_issuer + "/_peer/grants");
  if (r.status != 200) throw std::runtime_error("oauth peer: /_peer/grants answered " + std::to_string(r.status));
  return r.json().value(grant_type, 0);
}

namespace {

void write_connector_file(const fs::path& home, const std::string& slug, const nlohmann::json& connector) {
  fs::create_directories(home / "connectors.d");
  fs::permissions(home, fs::perms::owner_all);  // the daemon refuses a data dir others can see into
  std::ofstream(home / "connectors.d" / (slug + ".json")) << connector.dump(2);
}

}  // namespace

nlohmann::json peer_oauth(const std::string& issuer) {
  return {
      {"authorizeUrl", issuer + "/auth"},
      {"tokenUrl", issuer + "/token"},
      {"revocation", {{"style", "rfc7009"}, {"url", issuer + "/token/revocation"}}},
      {"defaultScopes", {"openid", "email", "offline_access"}},
      {"scopeSeparator", " "},
      {"pkce", true},
      {"clientAuth", "basic"},
      {"extraAuthorizeParams", {{"prompt", "consent"}}},
      {"accountPickerParam", {{"name", "prompt"}, {"value", "login"}}},
      {"issuer", issuer},
      {"issRequired", true},
      {"accountLabel",
       {{"source", "request"}, {"method", "GET"}, {"url", issuer + "/me"}, {"jsonPointers", {"/email"}}}},
  };
}

void write_peer_connector(const fs::path& home, const std::string& slug, const std::string& issuer,
                          const nlohmann::json& oauth_extra) {
  nlohmann::json oauth = peer_oauth(issuer);
  oauth.merge_patch(oauth_extra);
  nlohmann::json connector{{"slug", slug},
                           {"name", "Test peer " + slug},
                           {"description", "oidc-provider on loopback, for tests"},
                           {"category", "testing"},
                           {"authType", "oauth"},
                           {"availability", "available"},
                           {"tools", {{{"name", slug + ".whoami"}, {"description", "Read the signed-in account."}}}},
                           {"oauth", oauth}};
  write_connector_file(home, slug, connector);
}

void write_peer_patch(const fs::path& home, const std::string& slug, const std::string& issuer,
                      const nlohmann::json& oauth_extra) {
  nlohmann::json oauth = peer_oauth(issuer);
  oauth.update(oauth_extra, true);
  write_connector_file(home, slug, {{"slug", slug}, {"oauth", oauth}});
}

fs::path write_browser_wrapper(const fs::path& dir) {
  const fs::path wrapper = dir / "browser.sh";
  std::ofstream(wrapper) << "#!/bin/sh\nFAKE_BROWSER_JAR='" << (dir / "jar.json").string() << "' FAKE_BROWSER_LOG='"
                         << (dir / "browser.log").string() << "' exec /usr/bin/node '" << fake_browser_script().string()
                         << "' \"$@\"\n";
  fs::permissions(wrapper, fs::perms::owner_all);
  return wrapper;
}

EnvOverrides browser_env(const fs::path& wrapper, EnvOverrides env) {
  env["BROWSER"] = wrapper.string();
  env["DISPLAY"] = ":0";
  return env;
}

fs::path fake_browser_script() { return fs::path(ALUMIA_SOURCE_DIR) / "tests/support/fake-browser.mjs"; }

void jar_add_cookie(const fs::path& jar, const std::string& url, const std::string& set_cookie) {
  const auto host_start = url.find("://") + 3;
  const auto host_end = url.find_first_of(":/", host_start);
  const std::string host = url.substr(host_start, host_end - host_start);
  nlohmann::json j = nlohmann::json::object();
  if (fs::exists(jar)) j = nlohmann::json::parse(read_file(jar));
  nlohmann::json cookie{{"path", "/"}, {"expires", nullptr}, {"secure", false}};
  std::size_t pos = 0;
  bool first = true;
  while (pos <= set_cookie.size()) {
    auto end = set_cookie.find(';', pos);
    if (end == std::string::npos) end = set_cookie.size();
    std::string part = set_cookie.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    const auto eq = part.find('=');
    if (first) {
      cookie["name"] = part.substr(0, eq);
      cookie["value"] = part.substr(eq + 1);
      first = false;
    } else if (eq != std::string::npos && alumia::http::to_lower(part.substr(0, eq)) == "path") {
      cookie["path"] = part.substr(eq + 1);
    } else if (alumia::http::to_lower(part) == "secure") {
      cookie["secure"] = true;
    }
    pos = end + 1;
  }
  auto& list = j[host];
  if (!list.is_array()) list = nlohmann::json::array();
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& c : list)
    if (c["name"] != cookie["name"] || c["path"] != cookie["path"]) kept.push_back(c);
  kept.push_back(cookie);
  list = kept;
  std::ofstream(jar) << j.dump(1);
}

}  // namespace alumia::test
