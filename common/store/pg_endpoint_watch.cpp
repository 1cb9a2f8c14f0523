// EndpointWatch: LISTEN for the PostgreSQL webhook store's endpoint notifications (endpoint_watch.hpp).
#include "pg_conn.hpp"

#include <alumia/store/endpoint_watch.hpp>
#include <alumia/store/webhook_store.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

namespace alumia {
namespace {

class PgEndpointWatch final : public EndpointWatch {
 public:
  PgEndpointWatch(Options o, std::function<void(const std::string&)> changed, std::unique_ptr<pg::Connection> conn)
      : m_options(std::move(o)), m_changed(std::move(changed)), m_conn(std::move(conn)) {
    m_thread = std::thread([this] { run(); });
  }
  ~PgEndpointWatch() override {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
  }

 private:
  // Waits in slices of at most 200 ms, so that the destructor is not kept waiting.
  void run() {
    using Clock = std::chrono::steady_clock;
    auto last_recheck = Clock::now();
    bool lost = false;
    while (!m_stop) {
      if (lost) {
        if (!m_conn->reconnect() || !m_conn->listen(k_pg_endpoint_channel)) {
          std::this_thread::sleep_for(std::min(m_options.reconnect_pause, std::chrono::milliseconds(200)));
          continue;
        }
        lost = false;
        spdlog::info("endpoint watch: listening again; cached endpoints are read again");
        m_changed("");  // what was sent meanwhile is lost
        last_recheck = Clock::now();
      }
      auto got = m_conn->wait_notifications(std::chrono::milliseconds(200));
      if (!got) {
        spdlog::warn("endpoint watch: {}; reconnecting", got.error().message);
        lost = true;
        continue;
      }
      for (const auto& n : *got)
        if (n.channel == k_pg_endpoint_channel && !n.payload.empty()) m_changed(n.payload);
      if (Clock::now() - last_recheck >= m_options.recheck) {
        m_changed("");
        last_recheck = Clock::now();
      }
    }
  }

  Options m_options;
  std::function<void(const std::string&)> m_changed;
  std::unique_ptr<pg::Connection> m_conn;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace

Result<std::unique_ptr<EndpointWatch>> EndpointWatch::start(Options options,
                                                            std::function<void(const std::string&)> changed) {
  auto conn = pg::Connection::open(options.conninfo);
  if (!conn) return std::unexpected(conn.error());
  if (auto st = (*conn)->listen(k_pg_endpoint_channel); !st) return std::unexpected(st.error());
  return std::unique_ptr<EndpointWatch>(
      std::make_unique<PgEndpointWatch>(std::move(options), std::move(changed), std::move(*conn)));
}

}  // namespace alumia
