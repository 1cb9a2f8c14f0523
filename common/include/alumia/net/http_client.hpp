#pragma once
// The production outbound client (cpp-httplib + OpenSSL): one connection per request. The relay
// worker keeps connections alive through http::PooledClient (connection_pool.hpp) instead.
#include <alumia/net/http.hpp>

#include <string>

namespace alumia::http {

class HttplibClient final : public Client {
 public:
  explicit HttplibClient(std::string extra_ca_file = {}) : m_ca_file(std::move(extra_ca_file)) {}
  Result<OutboundResponse> send(const OutboundRequest& request) override;

 private:
  std::string m_ca_file;
};

}  // namespace alumia::http
