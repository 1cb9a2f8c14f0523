// The relay worker: due jobs → signed POST to the relay target → succeeded / failed (backoff) / dead.
#include <alumia/base/metrics.hpp>
#include <alumia/net/connection_pool.hpp>
#include <alumia/net/url.hpp>
#include <alumia/webhooks/relay_worker.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace alumia {

using std::chrono::milliseconds;

std::vector<milliseconds> default_relay_backoff() {
  using namespace std::chrono;
  return {seconds(5), seconds(30), minutes(2), minutes(10), minutes(30), hours(1), hours(3), hours(6)};
}

std::optional<std::vector<milliseconds>> parse_backoff(std::string_view text) {
  std::vector<milliseconds> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc{} || p != item.data() + item.size() || v < 0) return std::nullopt;
    out.emplace_back(v);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

RelayWorker::RelayWorker(WebhookStore& store, EndpointTargets& targets, http::Client& client, const Clock& clock,
                         Random& random, RelayWorkerOptions options)
    : m_store(store),
      m_targets(targets),
      m_client(client),
      m_clock(clock),
      m_random(random),
      m_options(std::move(options)) {}

RelayWorker::~RelayWorker() { stop(); }

void RelayWorker::start() {
  if (auto n = m_store.requeue_running(m_clock.now_ms()); n && *n > 0)
    spdlog::info("relay: {} job(s) interrupted by a restart are queued again", *n);
  // Delivery threads are started by the claim loop as jobs are claimed (grow_pool), not here: a
  // daemon with nothing to relay keeps none (each idle thread costs ~12 KiB of stack and TLS).
  m_thread = std::thread([this] { claim_loop(); });
}

void RelayWorker::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  m_ready_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
  for (auto& t : m_pool)
    if (t.joinable()) t.join();
  m_pool.clear();
}

void RelayWorker::notify() {
  {
    std::lock_guard lock(m_mutex);
    m_poked = true;
  }
  m_cv.notify_all();
}

namespace {

// The pool key of a target: scheme://host:port, or the URL itself when it does not parse (the
// delivery then fails on the URL and the job is retried as any failure is).
std::string target_origin(const Result<std::optional<RelayTarget>>& target) {
  if (!target || !*target) return {};
  auto u = url::parse((*target)->url);
  return u ? http::origin_of(*u) : (*target)->url;
}

// Per target origin the worker holds up to k_claim_rounds rounds of per_target jobs claimed (the ones
// in flight and the rest ready), and tops a target up once it is down to one round fewer: so the next
// claim (a round trip through the store's writer, which commits it with a flush of the WAL) is under way
// while three rounds are still to go, and claims come in batches of at least a round. With two rounds
// and a top-up at one and a half, a claim had half a round of slack (~1 ms at 5,000 jobs/s) and carried
// 4-6 jobs: every flush that took longer left the target's threads idle, and each claim's commit wrote
// its index pages for a handful of rows.
constexpr std::size_t k_claim_rounds = 4;
std::size_t claim_cap(std::size_t per_target) { return k_claim_rounds * per_target; }
std::size_t top_up_at(std::size_t per_target) { return (k_claim_rounds - 1) * per_target; }

}  // namespace

std::map<std::string, std::size_t> RelayWorker::claim_limits() {
  std::map<std::string, std::size_t> out;
  const std::size_t per_target = std::max<std::size_t>(1, m_options.per_target);
  for (const auto& [endpoint, origin] : m_origin_of) {
    if (origin.empty()) continue;
    auto it = m_load.find(origin);
    const std::size_t claimed = it == m_load.end() ? 0 : it->second.claimed;
    out[endpoint] = claimed > top_up_at(per_target) ? 0 : claim_cap(per_target) - claimed;
  }
  return out;
}

void RelayWorker::claim_loop() {
  // Claimed jobs are `running` in the store. The worker claims what its threads can start now plus
  // rounds more: a claim is committed by the store's writer, behind the batch it is applying, so
  // claiming only free slots left the threads idle during every claim (the relay fell to a few
  // hundred jobs a second under ingest). Per target origin the same rounds are the cap (claim_cap).
  const std::size_t depth = k_claim_rounds * std::max<std::size_t>(1, m_options.concurrency);
  const std::size_t per_target_cap = claim_cap(std::max<std::size_t>(1, m_options.per_target));
  for (;;) {
    std::size_t free_slots = 0;
    std::map<std::string, std::size_t> limits;
    {
      std::unique_lock lock(m_mutex);
      m_cv.wait(lock, [&] { return m_stopping || m_in_flight < depth; });
      if (m_stopping) return;
      m_poked = false;
      m_room = false;
      free_slots = depth - m_in_flight;
      limits = claim_limits();
    }
    const int64_t now = m_clock.now_ms();
    auto jobs = m_store.claim_due_jobs(now, free_slots, m_options.have_default_target, limits);
    if (!jobs) spdlog::warn("relay: cannot claim jobs: {}", jobs.error().message);
    if (jobs && !jobs->empty()) {
      // Each job's target, looked up once per endpoint and claim (the endpoint cache answers).
      std::unordered_map<std::string, std::pair<Result<std::optional<RelayTarget>>, std::string>> targets;
      std::vector<Ready> claimed;
      claimed.reserve(jobs->size());
      for (auto& j : *jobs) {
        auto it = targets.find(j.endpoint_id);
        if (it == targets.end()) {
          auto target = m_targets.relay_target(j.endpoint_id);
          std::string origin = target_origin(target);
          it = targets.emplace(j.endpoint_id, std::pair{std::move(target), std::move(origin)}).first;
        }
        claimed.push_back(Ready{std::move(j), it->second.first, it->second.second});
      }
      std::vector<WebhookJob> give_back;  // jobs of a target that already has its four rounds
      {
        std::lock_guard lock(m_mutex);
        for (auto& r : claimed) {
          m_origin_of[r.job.endpoint_id] = r.origin;
          if (!r.origin.empty()) {
            Load& load = m_load[r.origin];
            if (load.claimed >= per_target_cap) {
              give_back.push_back(std::move(r.job));
              continue;
            }
            ++load.claimed;
          }
          ++m_in_flight;
          m_ready.push_back(std::move(r));
        }
      }
      grow_pool();
      // One wake-up per job made ready: every delivery thread can take any of them, and a thread that
      // finishes a delivery looks for the next job itself, so nobody else needs waking for it.
      for (std::size_t i = 0; i < claimed.size(); ++i) m_ready_cv.notify_one();
      // Back to the store as they were (still due, no attempt spent); the next claims skip their
      // endpoints until the target has room again.
      for (auto& j : give_back) {
        limits[j.endpoint_id] = 0;  // not due for this wait: it waits for room at its target
        j.state = j.attempts > 0 ? JobState::failed : JobState::queued;
        j.updated_at = m_clock.now_ms();
        m_store.finish_job_later(j);
      }
      if (give_back.size() < jobs->size()) continue;  // more may be due right away
    }
    // Nothing due (or nothing that can start): sleep until a poke, a freed slot, the earliest
    // scheduled attempt, or the idle poll.
    if (m_options.on_idle) m_options.on_idle();
    std::chrono::milliseconds wait = m_options.idle_poll;
    if (auto next = m_store.next_due_at(m_options.have_default_target, limits); next && *next)
      wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(**next - m_clock.now_ms(), 1)));
    std::unique_lock lock(m_mutex);
    m_cv.wait_for(lock, wait, [&] { return m_stopping || m_poked || m_room; });
  }
}

// Claim thread: one delivery thread per delivery that could run now (per target at most per_target
// of its claimed jobs), up to `concurrency`; they stay once started. A backlog to one target keeps
// per_target threads, not `concurrency`: the others would only wake, find nothing startable and sleep.
// stop() joins the claim thread before the pool, so only this thread changes m_pool meanwhile.
void RelayWorker::grow_pool() {
  std::size_t want = 0;
  {
    std::lock_guard lock(m_mutex);
    const std::size_t per_target = std::max<std::size_t>(1, m_options.per_target);
    std::size_t with_origin = 0;
    for (const auto& [origin, load] : m_load) {
      with_origin += load.claimed;
      want += std::min(per_target, load.claimed);
    }
    want += m_in_flight - with_origin;  // jobs without a target (they fail at once)
    want = std::min(std::max<std::size_t>(1, m_options.concurrency), want);
  }
  while (m_pool.size() < want) m_pool.emplace_back([this] { delivery_loop(); });
  m_pool_size.store(m_pool.size());
}

void RelayWorker::delivery_loop() {
  const std::size_t per_target = std::max<std::size_t>(1, m_options.per_target);
  const auto can_start = [&](const Ready& r) { return r.origin.empty() || m_load[r.origin].delivering < per_target; };
  for (;;) {
    Ready ready{{}, std::optional<RelayTarget>(), {}};
    bool pass_on = false;
    {
      std::unique_lock lock(m_mutex);
      // The oldest ready job whose target has a free slot; jobs of a busy target wait their turn.
      auto startable = m_ready.end();
      ++m_waiting;
      m_ready_cv.wait(lock, [&] {
        if (m_stopping) return true;
        startable = std::find_if(m_ready.begin(), m_ready.end(), can_start);
        return startable != m_ready.end();
      });
      --m_waiting;
      if (m_stopping) return;  // jobs still ready stay `running`: the next start() queues them again
      ready = std::move(*startable);
      m_ready.erase(startable);
      if (!ready.origin.empty()) ++m_load[ready.origin].delivering;
      // This thread may have taken another job than the one its own finished delivery made startable:
      // a sleeping thread then takes that one.
      pass_on = m_waiting > 0 && std::any_of(m_ready.begin(), m_ready.end(), can_start);
    }
    if (pass_on) m_ready_cv.notify_one();
    const std::string origin = ready.origin;
    deliver(std::move(ready));
    bool wake_claimer = false;
    {
      std::lock_guard lock(m_mutex);
      wake_claimer = m_in_flight-- == k_claim_rounds * std::max<std::size_t>(1, m_options.concurrency);
      std::size_t claimed = 0;
      if (!origin.empty()) {
        auto it = m_load.find(origin);
        --it->second.delivering;
        claimed = --it->second.claimed;
        if (claimed == 0) m_load.erase(it);
      }
      // Claim again once this target is down to its top-up mark, or the worker to its thread count.
      const std::size_t threads = std::max<std::size_t>(1, m_options.concurrency);
      if (origin.empty() || claimed == top_up_at(per_target) || m_in_flight == threads) m_room = wake_claimer = true;
    }
    // Only the claimer is woken, and only when it has something to do: a wake-up of every thread per
    // delivery (notify_all on both) was most of the relay's CPU (perf: futex waits and task switches).
    // The slot this delivery freed is taken by this thread's next turn of the loop.
    if (wake_claimer) m_cv.notify_one();
  }
}

void RelayWorker::finish(WebhookJob& job, JobState state, std::optional<int64_t> status,
                         std::optional<std::string> error) {
  const int64_t now = m_clock.now_ms();
  job.state = state;
  job.last_status = status;
  job.last_error = std::move(error);
  job.updated_at = now;
  job.finished_at =
      (state == JobState::succeeded || state == JobState::dead) ? std::optional<int64_t>(now) : std::nullopt;
  m_store.finish_job_later(job);  // committed with the next batch; the slot is free at once
}

namespace {
// GET /metrics: relay attempts (a POST made) by outcome: delivered, retry (failed, tried again later), dead.
metrics::Counter& relay_attempts(const char* outcome) {
  return metrics::process_registry().counter("alumia_relay_attempts_total", "relay POSTs made, by outcome",
                                             {{"outcome", outcome}});
}
}  // namespace

void RelayWorker::deliver(Ready ready) {
  WebhookJob& job = ready.job;
  const auto& target = ready.target;
  auto event = m_store.find_event(job.event_id, true);
  if (!target || !event) {
    // Store trouble: try again soon without spending an attempt.
    job.next_attempt_at = m_clock.now_ms() + 1000;
    finish(job, job.attempts > 0 ? JobState::failed : JobState::queued, job.last_status, "store unavailable");
    return;
  }
  if (!*event) {
    finish(job, JobState::dead, std::nullopt, "event no longer exists");
    return;
  }
  if (!*target) {
    // No target (or the endpoint is gone): keep the job waiting; it drains when a target appears.
    job.next_attempt_at = m_clock.now_ms() + 60'000;
    finish(job, job.attempts > 0 ? JobState::failed : JobState::queued, job.last_status, "no relay target");
    return;
  }

  const http::OutboundRequest req =
      relay_request(**event, job, **target, m_clock.now_unix(), m_options.request_timeout);
  auto res = m_client.send(req);
  job.attempts += 1;
  if (res && res->status >= 200 && res->status < 300) {
    spdlog::debug("relay: job {} delivered ({})", job.id, res->status);
    static metrics::Counter& delivered = relay_attempts("delivered");
    delivered.inc();
    finish(job, JobState::succeeded, res->status, std::nullopt);
    return;
  }
  std::optional<int64_t> status;
  std::string error;
  if (res) {
    status = res->status;
    error = "relay target answered HTTP " + std::to_string(res->status);
  } else {
    error = res.error().message;
  }
  const auto& schedule = m_options.backoff;
  if (static_cast<std::size_t>(job.attempts) > schedule.size()) {
    spdlog::warn("relay: job {} is dead after {} attempts: {}", job.id, job.attempts, error);
    static metrics::Counter& dead = relay_attempts("dead");
    dead.inc();
    finish(job, JobState::dead, status, error);
    return;
  }
  const int64_t base = schedule[static_cast<std::size_t>(job.attempts) - 1].count();
  int64_t jitter = 0;
  const auto spread = static_cast<uint64_t>(static_cast<double>(base) * m_options.jitter);
  if (spread > 0) jitter = static_cast<int64_t>(m_random.below(spread + 1));
  job.next_attempt_at = m_clock.now_ms() + base + jitter;
  spdlog::info("relay: job {} attempt {} failed ({}); next in {} ms", job.id, job.attempts, error, base + jitter);
  static metrics::Counter& retry = relay_attempts("retry");
  retry.inc();
  finish(job, JobState::failed, status, error);
}

}  // namespace alumia
