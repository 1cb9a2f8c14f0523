// Kept-alive outbound connections, pooled per origin (connection_pool.hpp), and the cpp-httplib
// connection that both the pool and the one-shot HttplibClient use.
#include <alumia/base/try.hpp>
#include <alumia/net/connection_pool.hpp>
#include <alumia/net/http_client.hpp>

#include <httplib.h>

#include <algorithm>

namespace alumia::http {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;

// One httplib::Client is one connection: it connects on its first request and, with keep-alive,
// keeps the socket open for the next (reconnecting by itself if the server closed it meanwhile).
class HttplibConnection final : public Connection {
 public:
  HttplibConnection(const std::string& origin, const std::string& ca_file, bool keep_alive)
      : m_cli(origin), m_keep_alive(keep_alive) {
    m_cli.set_follow_location(false);
    m_cli.enable_server_certificate_verification(true);
    if (!ca_file.empty()) m_cli.set_ca_cert_path(ca_file.c_str());
    m_cli.set_keep_alive(keep_alive);
    m_cli.set_tcp_nodelay(true);  // a kept-alive POST is two writes: Nagle + delayed ACK would stall each 40 ms
  }

  Outcome exchange(const OutboundRequest& r, const url::Url& u) override {
    m_cli.set_connection_timeout(duration_cast<microseconds>(r.connect_timeout));
    m_cli.set_read_timeout(duration_cast<microseconds>(r.timeout));
    m_cli.set_write_timeout(duration_cast<microseconds>(r.timeout));
    httplib::Request req;
    req.method = r.method;
    req.path = u.path + (u.query.empty() ? "" : "?" + u.query);
    for (const auto& [k, v] : r.headers) req.headers.emplace(k, v);
    req.body = r.body;
    if (!r.content_type.empty()) req.set_header("Content-Type", r.content_type);
    std::string body;
    bool too_big = false;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (body.size() + len > r.max_response_bytes) {
        too_big = true;
        return false;
      }
      body.append(data, len);
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool ok = m_cli.send(req, res, err);
    if (too_big)
      return {fail(ErrorCode::service_unavailable,
                   "response from " + u.host + " exceeded " + std::to_string(r.max_response_bytes) + " bytes"),
              false};
    if (!ok)
      return {fail(ErrorCode::service_unavailable, "request to " + u.host + " failed: " + httplib::to_string(err)),
              false};
    OutboundResponse out;
    out.status = res.status;
    for (const auto& [k, v] : res.headers) out.headers.emplace_back(to_lower(k), v);
    out.body = std::move(body);
    // cpp-httplib closes the socket itself after "Connection: close"; such a connection is not kept.
    return {std::move(out), m_keep_alive && m_cli.is_socket_open() != 0};
  }

 private:
  httplib::Client m_cli;
  bool m_keep_alive;
};

}  // namespace

std::string origin_of(const url::Url& u) {
  return u.scheme + "://" + (u.host_is_ipv6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
}

std::unique_ptr<Connection> HttplibConnections::open(const url::Url&, const std::string& origin) {
  return std::make_unique<HttplibConnection>(origin, m_ca_file, true);
}

Result<OutboundResponse> HttplibClient::send(const OutboundRequest& r) {
  TRY(url::check_outbound_url(r.url));
  auto u = TRY(url::parse(r.url));
  HttplibConnection connection(origin_of(u), m_ca_file, false);
  return std::move(connection.exchange(r, u).result);
}

PooledClient::PooledClient(ConnectionFactory& factory, const Clock& clock, PoolOptions options)
    : m_factory(factory), m_clock(clock), m_options(options) {}

Result<OutboundResponse> PooledClient::send(const OutboundRequest& r) {
  TRY(url::check_outbound_url(r.url));
  auto u = TRY(url::parse(r.url));
  const std::string origin = origin_of(u);
  auto connection = take(origin);
  const bool reused = connection != nullptr;
  if (!connection) connection = m_factory.open(u, origin);
  const int64_t started = m_clock.now_ms();
  auto outcome = connection->exchange(r, u);
  if (!outcome.result && reused && m_clock.now_ms() - started < r.timeout.count() / 2) {
    // Most likely the server closed the idle connection as we wrote: once more on a fresh one.
    connection = m_factory.open(u, origin);
    {
      std::lock_guard lock(m_mutex);
      ++m_opened;
    }
    outcome = connection->exchange(r, u);
  }
  if (outcome.result && outcome.reusable) give_back(origin, std::move(connection));
  return std::move(outcome.result);  // a failed connection is destroyed here: it is never reused
}

std::unique_ptr<Connection> PooledClient::take(const std::string& origin) {
  std::lock_guard lock(m_mutex);
  sweep_locked(m_clock.now_ms());
  auto it = m_idle.find(origin);
  if (it == m_idle.end() || it->second.empty()) {
    ++m_opened;  // the caller opens one
    return nullptr;
  }
  auto connection = std::move(it->second.back().connection);  // the most recently used: least likely closed
  it->second.pop_back();
  --m_idle_total;
  return connection;
}

void PooledClient::give_back(const std::string& origin, std::unique_ptr<Connection> connection) {
  std::unique_ptr<Connection> evicted;  // closed outside the lock
  std::lock_guard lock(m_mutex);
  auto& list = m_idle[origin];
  if (list.size() >= m_options.max_idle_per_origin) return;  // `connection` closes on return
  if (m_idle_total >= m_options.max_idle_total) {
    // Close the connection idle longest, whatever its origin.
    auto oldest = m_idle.end();
    for (auto it = m_idle.begin(); it != m_idle.end(); ++it)
      if (!it->second.empty() &&
          (oldest == m_idle.end() || it->second.front().since_ms < oldest->second.front().since_ms))
        oldest = it;
    if (oldest == m_idle.end()) return;
    evicted = std::move(oldest->second.front().connection);
    oldest->second.erase(oldest->second.begin());
    --m_idle_total;
  }
  list.push_back(Idle{std::move(connection), m_clock.now_ms()});
  ++m_idle_total;
}

void PooledClient::sweep() {
  std::lock_guard lock(m_mutex);
  sweep_locked(m_clock.now_ms());
}

void PooledClient::sweep_locked(int64_t now) {
  for (auto it = m_idle.begin(); it != m_idle.end();) {
    auto& list = it->second;
    const auto fresh = std::find_if(list.begin(), list.end(),
                                    [&](const Idle& i) { return now - i.since_ms < m_options.idle_timeout.count(); });
    m_idle_total -= static_cast<std::size_t>(fresh - list.begin());
    list.erase(list.begin(), fresh);  // oldest first, so the expired ones are a prefix
    it = list.empty() ? m_idle.erase(it) : std::next(it);
  }
}

std::size_t PooledClient::idle_count(const std::string& origin) const {
  std::lock_guard lock(m_mutex);
  auto it = m_idle.find(origin);
  return it == m_idle.end() ? 0 : it->second.size();
}

std::size_t PooledClient::idle_total() const {
  std::lock_guard lock(m_mutex);
  return m_idle_total;
}

std::size_t PooledClient::opened() const {
  std::lock_guard lock(m_mutex);
  return m_opened;
}

}  // namespace alumia::http
