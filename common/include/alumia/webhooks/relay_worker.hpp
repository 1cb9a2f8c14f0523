#pragma once
// The relay worker (SPEC §7): claims due jobs from the WebhookStore, POSTs each event to the
// endpoint's relay target (relay_message.hpp: the body and its signature); 2xx → succeeded, otherwise
// failed with backoff and jitter, dead after the last attempt. It reads targets through
// EndpointTargets and is woken through JobWaker (relay_target.hpp): it never sees the webhook service.
// Clock, randomness and the HTTP client are injected (the daemon's is an http::PooledClient: kept-alive
// connections per target origin).
#include <alumia/base/clock.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_message.hpp>
#include <alumia/webhooks/relay_target.hpp>
#include <alumia/webhooks/webhook_limits.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
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
  // Delivery threads: deliveries in flight at once, over all targets.
  std::size_t concurrency = 32;
  // Deliveries in flight at once to one target origin (scheme://host:port; setting
  // relay-target-concurrency): a slow or dead target holds at most this many threads, the others
  // keep the rest.
  std::size_t per_target = 8;
  std::chrono::milliseconds request_timeout{10000};  // a dead target holds a thread this long at most
  std::chrono::milliseconds idle_poll{1000};         // re-check the store at least this often
  std::function<void()> on_idle;                     // called while the claimer waits (closes idle connections)
};

// One claimer thread takes due jobs from the store and hands them to `concurrency` delivery threads.
// Per target origin it holds at most four rounds (4 x per_target claimed: the ones in flight and three
// rounds ahead, so a claim's commit may take three rounds' time before the threads run dry) and starts
// at most per_target at once. An endpoint whose target holds more than three rounds is skipped by the
// claim (the claim tops a target up to four rounds once it is down to three, so claims come in batches
// of a round or more); a claimed job beyond its target's four rounds (endpoints that share a target)
// goes back to the store untouched, no attempt spent. So the jobs of a slow or saturated target wait
// in the store while the others proceed.
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
  // Delivery threads started so far (tests: a backlog to one target keeps only its per-target count).
  std::size_t delivery_threads() const { return m_pool_size.load(); }

 private:
  struct Ready {
    WebhookJob job;
    Result<std::optional<RelayTarget>> target;
    std::string origin;  // the target's scheme://host:port; empty when there is none (or no store)
  };
  struct Load {
    std::size_t claimed = 0;     // ready + delivering
    std::size_t delivering = 0;  // on a delivery thread now
  };
  void claim_loop();
  void delivery_loop();
  void grow_pool();
  void deliver(Ready ready);
  void finish(WebhookJob& job, JobState state, std::optional<int64_t> status, std::optional<std::string> error);
  std::map<std::string, std::size_t> claim_limits();  // under m_mutex: per known endpoint, what it may add

  WebhookStore& m_store;
  EndpointTargets& m_targets;
  http::Client& m_client;
  const Clock& m_clock;
  Random& m_random;
  RelayWorkerOptions m_options;
  std::mutex m_mutex;
  std::condition_variable m_cv;        // claimer: poked, a slot freed, stopping
  std::condition_variable m_ready_cv;  // delivery threads: a job is ready or a target freed a slot, stopping
  std::deque<Ready> m_ready;
  std::size_t m_in_flight = 0;                               // claimed and not finished
  std::size_t m_waiting = 0;                                 // delivery threads waiting for a startable job
  std::map<std::string, Load> m_load;                        // by origin, while it has jobs claimed
  std::unordered_map<std::string, std::string> m_origin_of;  // endpoint id -> origin of its last job
  bool m_stopping = false;
  bool m_poked = false;
  bool m_room = false;  // a target (or the whole worker) fell to one round claimed: claim again
  std::thread m_thread;
  std::vector<std::thread> m_pool;  // delivery threads, started as jobs are claimed (grow_pool)
  std::atomic<std::size_t> m_pool_size{0};
};

}  // namespace alumia
