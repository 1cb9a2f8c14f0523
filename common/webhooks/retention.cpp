// The retention sweep (retention.hpp; SPEC §9 "Retention"): batches of the store's retention
// operations, a pause after each, and the space given back after a pass that removed something.
#include <alumia/base/try.hpp>
#include <alumia/webhooks/retention.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace alumia {

Result<RetentionBatch> retire_events(WebhookStore& store, const std::vector<std::string>& endpoint_ids, int64_t before,
                                     bool dry_run, std::size_t batch) {
  RetentionBatch total;
  for (const auto& id : endpoint_ids) {
    RetentionCursor cursor;
    for (bool more = true; more;) {
      const auto got = TRY(store.delete_events(id, before, batch, dry_run, cursor));
      total.events += got.events;
      total.jobs += got.jobs;
      total.bytes += got.bytes;
      more = got.more;
    }
  }
  return total;
}

Result<int64_t> give_back_space(WebhookStore& store, int64_t pages) {
  int64_t total = 0;
  for (;;) {
    const int64_t got = TRY(store.incremental_vacuum(pages));
    total += got;
    if (got == 0) return total;
  }
}

RetentionSweeper::RetentionSweeper(WebhookStore& store, const Clock& clock, RetentionOptions options)
    : m_store(store), m_clock(clock), m_options(options), m_batch(std::max<std::size_t>(options.batch, 1)) {
  m_options.max_batch = std::max(m_options.max_batch, m_batch);
}

RetentionSweeper::~RetentionSweeper() { stop(); }

void RetentionSweeper::start() {
  std::lock_guard lock(m_mutex);
  if (m_thread.joinable()) return;
  m_stopping = false;
  m_thread = std::thread([this] { loop(); });
}

void RetentionSweeper::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

void RetentionSweeper::pause() {
  std::unique_lock lock(m_mutex);
  m_cv.wait_for(lock, m_options.pause, [this] { return m_stopping; });
}

template <class F>
auto RetentionSweeper::batch(F&& call, std::chrono::microseconds& busy) -> decltype(call(std::size_t{})) {
  const auto started = std::chrono::steady_clock::now();
  auto got = call(m_batch);
  const auto took = std::chrono::steady_clock::now() - started;
  busy += std::chrono::duration_cast<std::chrono::microseconds>(took);
  if (got && got->more && took < m_options.batch_time / 2) m_batch = std::min(m_batch * 2, m_options.max_batch);
  else if (took > m_options.batch_time) m_batch = std::max(m_batch / 2, std::max<std::size_t>(m_options.batch, 1));
  return got;
}

Result<RetentionTotals> RetentionSweeper::sweep() {
  RetentionTotals out;
  const int64_t now = m_clock.now_ms();
  const auto endpoints = TRY(m_store.retention_endpoints());
  auto stopping = [this] {
    std::lock_guard lock(m_mutex);
    return m_stopping;
  };
  for (const auto& e : endpoints) {
    const int64_t window = window_ms(e.retention_days);
    for (bool more = true; more && !stopping();) {
      const auto got = TRY(
          batch([&](std::size_t rows) { return m_store.drop_event_bodies(e.id, now - window, rows, now); }, out.busy));
      out.bodies.events += got.events;
      out.bodies.bytes += got.bytes;
      more = got.more;
      pause();
    }
    RetentionCursor cursor;
    for (bool more = true; more && !stopping();) {
      const auto got = TRY(batch(
          [&](std::size_t rows) {
            return m_store.delete_events(e.id, now - k_retention_row_windows * window, rows, false, cursor);
          },
          out.busy));
      out.rows.events += got.events;
      out.rows.jobs += got.jobs;
      out.rows.bytes += got.bytes;
      more = got.more;
      pause();
    }
  }
  // The dedup keys past their TTL (the relay worker's claim thread did this before: the filter's rebuild
  // stalled its claims). First in a pass: their pages are given back with the events'.
  if (!stopping() && (!m_last_prune || now - *m_last_prune >= m_options.dedup_prune_every_ms())) {
    m_last_prune = now;
    const auto started = std::chrono::steady_clock::now();
    out.dedup_pruned = TRY(m_store.prune_dedup(now - m_options.dedup_ttl_ms));
    out.dedup_busy = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  }
  if (out.bodies.events + out.rows.events + out.dedup_pruned > 0)
    for (int64_t got = 1; got > 0 && !stopping();) {
      const auto started = std::chrono::steady_clock::now();
      got = TRY(m_store.incremental_vacuum(m_options.vacuum_pages));
      out.busy += std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
      out.vacuumed += got;
      pause();
    }
  return out;
}

void RetentionSweeper::loop() {
  for (;;) {
    {
      std::unique_lock lock(m_mutex);
      if (m_cv.wait_for(lock, m_options.interval, [this] { return m_stopping; })) return;
    }
    const auto got = sweep();
    if (!got) {
      spdlog::warn("retention: sweep stopped: {}", got.error().message);
      continue;
    }
    if (got->bodies.events + got->rows.events + got->dedup_pruned > 0)
      spdlog::info(
          "retention: {} event bodies dropped, {} events and {} jobs deleted ({} bytes), {} bytes given back; "
          "{} ms in the store, batches of {} rows; {} dedup keys pruned in {} ms",
          got->bodies.events, got->rows.events, got->rows.jobs, got->bodies.bytes + got->rows.bytes, got->vacuumed,
          (got->busy.count() + 500) / 1000, m_batch, got->dedup_pruned, (got->dedup_busy.count() + 500) / 1000);
  }
}

}  // namespace alumia
