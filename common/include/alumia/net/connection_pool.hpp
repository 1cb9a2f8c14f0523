#pragma once
// Outbound HTTP over kept-alive connections, for the relay worker: one small pool of idle
// connections per origin (scheme://host:port), so a backlog to one target costs one TCP (and TLS)
// handshake per connection instead of one per POST.
//
// The contract, on top of http::Client's (the same URL policy, TLS verification, no redirects,
// response cap, SERVICE_UNAVAILABLE for transport failures):
// - A connection goes back to its origin's idle list only after a complete exchange that left it
//   open (any status: a 500 is an answer, not a broken connection). A connection that failed in any
//   way (connect, write, read, timeout, response over the cap) is closed at once and never handed
//   out again, so the next attempt of the same job starts on a fresh one.
// - A request sent on a reused connection that fails quickly (within half its timeout: the server
//   had closed the idle connection as we wrote) is sent once more on a fresh connection. The relay
//   is at-least-once and its consumers dedup on Alumia-Event-Id, so a resend is allowed; a slow
//   target (a timeout) is never resent, so a dead target ties up a slot for one timeout only.
// - At most `max_idle_per_origin` idle connections per origin and `max_idle_total` in all (the
//   oldest go first); a connection idle for `idle_timeout` is closed (servers close theirs after
//   5 s (cpp-httplib, node) to 75 s (nginx); ours goes first so a request rarely meets a dead one).
//   Expired connections are closed on every send and by sweep(), which the relay worker calls while
//   it waits.
// - It does not limit how many requests are in flight: the caller (the relay worker's per-target
//   limit) does.
//
// Connections come from a ConnectionFactory so that the pool logic is tested without sockets; the
// production factory (HttplibConnections) wraps one httplib::Client per connection.
#include <alumia/base/clock.hpp>
#include <alumia/net/http.hpp>
#include <alumia/net/url.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace alumia::http {

// One connection to one origin; used by one request at a time.
class Connection {
 public:
  struct Outcome {
    Result<OutboundResponse> result;
    bool reusable = false;  // the exchange completed and the connection is still open
  };
  virtual ~Connection() = default;
  virtual Outcome exchange(const OutboundRequest& request, const url::Url& url) = 0;
};

class ConnectionFactory {
 public:
  virtual ~ConnectionFactory() = default;
  // A new, not yet connected, connection to `origin` (it connects on its first exchange).
  virtual std::unique_ptr<Connection> open(const url::Url& url, const std::string& origin) = 0;
};

// cpp-httplib connections: keep-alive, verified TLS (system store plus an optional extra CA file).
class HttplibConnections final : public ConnectionFactory {
 public:
  explicit HttplibConnections(std::string extra_ca_file = {}) : m_ca_file(std::move(extra_ca_file)) {}
  std::unique_ptr<Connection> open(const url::Url& url, const std::string& origin) override;

 private:
  std::string m_ca_file;
};

struct PoolOptions {
  std::size_t max_idle_per_origin = 8;
  std::size_t max_idle_total = 256;
  std::chrono::milliseconds idle_timeout{2000};
};

// "scheme://host:port" of a parsed URL (IPv6 hosts in brackets): the key of a pool.
std::string origin_of(const url::Url& url);

class PooledClient final : public Client {
 public:
  PooledClient(ConnectionFactory& factory, const Clock& clock, PoolOptions options = {});
  Result<OutboundResponse> send(const OutboundRequest& request) override;
  // Closes the connections idle for longer than the idle timeout.
  void sweep();
  std::size_t idle_count(const std::string& origin) const;
  std::size_t idle_total() const;
  // Connections opened so far (reused ones count once).
  std::size_t opened() const;

 private:
  struct Idle {
    std::unique_ptr<Connection> connection;
    int64_t since_ms = 0;
  };
  std::unique_ptr<Connection> take(const std::string& origin);
  void give_back(const std::string& origin, std::unique_ptr<Connection> connection);
  void sweep_locked(int64_t now);

  ConnectionFactory& m_factory;
  const Clock& m_clock;
  PoolOptions m_options;
  mutable std::mutex m_mutex;
  std::map<std::string, std::vector<Idle>> m_idle;  // per origin, oldest first
  std::size_t m_idle_total = 0;
  std::size_t m_opened = 0;
};

}  // namespace alumia::http
