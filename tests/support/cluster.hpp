#pragma once
// Several real daemons on one PostgreSQL database behind the round-robin test balancer (issue 17 item 3,
// docs/SCALE-OUT.md): each daemon has its own data directory and listeners; they share the store
// (ALUMIA_STORE, a fresh database of the binary's shared server) and the master key, set up as
// docs/SCALE-OUT.md "How to run it" says: one key file outside every data directory, named by
// ALUMIA_MASTER_KEY_FILE, which the first daemon creates; the owner's `key` file it makes is copied into
// each other data directory before that daemon starts, so every daemon's CLI and API calls use the one
// owner key.
//
// `balancer` fronts the daemons' public listeners (webhook deliveries, OAuth tickets and callbacks); it
// is bound before the daemons start, so it can be their ALUMIA_OAUTH_REDIRECT_BASE.
#include "http_proxy.hpp"
#include "postgres.hpp"
#include "process.hpp"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace alumia::test {

class Cluster {
 public:
  // `n` daemons on a fresh database; `prepare(home)` runs on each data directory before its daemon starts
  // (e.g. to write connectors.d files); `options` are every daemon's (ALUMIA_STORE and the redirect base
  // are added, and --public-listen 127.0.0.1:0).
  Cluster(int n, Daemon::Options options, const std::function<void(const std::filesystem::path&)>& prepare = {})
      : balancer("127.0.0.1", "localhost") {
    auto& server = shared_postgres();
    m_uri = server.uri(server.fresh_database());
    options.env["ALUMIA_STORE"] = m_uri;
    options.env["ALUMIA_MASTER_KEY_FILE"] = (key_dir.path() / "master.key").string();
    options.env.emplace("ALUMIA_OAUTH_REDIRECT_BASE", balancer.url());
    options.extra_args.push_back("--public-listen");
    options.extra_args.push_back("127.0.0.1:0");
    for (int i = 0; i < n; ++i) {
      homes.push_back(std::make_unique<TempDir>());
      const auto& home = homes.back()->path();
      if (i > 0) {
        std::filesystem::copy_file(homes.front()->path() / "key", home / "key");
        std::filesystem::permissions(home / "key",
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      }
      if (prepare) prepare(home);
      daemons.push_back(std::make_unique<Daemon>(home, options));
      auto st = daemons.back()->api("GET", "/api/v1/status");
      if (st.status != 200 || !st.json()["data"]["publicUrl"].is_string())
        throw std::runtime_error("daemon " + std::to_string(i) + " has no public listener: " + st.body);
      public_urls.push_back(st.json()["data"]["publicUrl"].get<std::string>());
    }
    balancer.set_upstreams(public_urls);
  }

  Daemon& operator[](std::size_t i) { return *daemons.at(i); }
  std::size_t size() const { return daemons.size(); }
  const std::string& store_uri() const { return m_uri; }

  TempDir key_dir;  // the shared master key file's directory (declared first: it outlives the daemons)
  HttpProxy balancer;
  std::vector<std::unique_ptr<TempDir>> homes;
  std::vector<std::unique_ptr<Daemon>> daemons;
  std::vector<std::string> public_urls;

 private:
  std::string m_uri;
};

}  // namespace alumia::test
