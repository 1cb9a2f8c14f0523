#pragma once
// The relay worker (SPEC §7): claims due jobs from the WebhookStore, POSTs each event to the
// endpoint's relay target (relay_message.hpp: the body and its signature); 2xx → succeeded, otherwise
// failed with backoff and jitter, dead after the last attempt. It reads targets through
// EndpointTargets and is woken through JobWaker (relay_target.hpp): it never sees the webhook service.
// Clock, randomness and the HTTP client are injected.
#include <alumia/base/clock.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_message.hpp>
#include <alumia/webhooks/relay_target.hpp>
#include <alumia/webhooks/webhook_limits.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace alumia {

// 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h: the delay after the 1st, 2nd, ... failed attempt; a failure
// after the last one makes the job dead.
std::vector<std::chrono::milliseconds> default_relay_backoff();
// "50,100,200" (milliseconds) → schedule; nullopt when malformed.
std::optional<std::vector<std::chrono::milliseconds>> parse_backoff(std::string_view text);

struct RelayWorkerOptions {
  std::vector<std::chrono::milliseconds> backoff = default_relay_backoff();
  double jitter = 0.2;  // each delay grows by up to this fraction, at random
  bool have_default_target = false;
  // Deliveries in flight at once: a slow or dead target holds one slot per job it holds, not the
  // whole queue.
  std::size_t concurrency = 8;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds idle_poll{1000};  // re-check the store at least this often
};

// One claimer thread takes due jobs from the store (never more than two rounds of the delivery
// threads: the free slots and one round ahead) and hands them to `concurrency` delivery threads.
class RelayWorker final : public JobWaker {
 public:
  RelayWorker(WebhookStore& store, EndpointTargets& targets, http::Client& client, const Clock& clock, Random& random,
              RelayWorkerOptions options);
  ~RelayWorker();
  RelayWorker(const RelayWorker&) = delete;
  RelayWorker& operator=(const RelayWorker&) = delete;

  // Requeues jobs left running by a crash, then serves on background threads.
  void start();
  // Waits for deliveries in flight; jobs claimed but not started stay `running` in the store and
  // are queued again by the next start().
  void stop();
  void notify();  // a job became due
  void jobs_due() override { notify(); }

 private:
  void claim_loop();
  void delivery_loop();
  void deliver(WebhookJob job);

  WebhookStore& m_store;
  EndpointTargets& m_targets;
  http::Client& m_client;
  const Clock& m_clock;
  Random& m_random;
  RelayWorkerOptions m_options;
  std::mutex m_mutex;
  std::condition_variable m_cv;        // claimer: poked, a slot freed, stopping
  std::condition_variable m_ready_cv;  // delivery threads: a job is ready, stopping
  std::deque<WebhookJob> m_ready;
  std::size_t m_in_flight = 0;  // claimed and not finished (ready + being delivered)
  bool m_stopping = false;
  bool m_poked = false;
  int64_t m_last_prune = 0;
  std::thread m_thread;
  std::vector<std::thread> m_pool;
};

}  // namespace alumia
