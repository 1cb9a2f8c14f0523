// bench_store_apply [N]: N new GitHub deliveries through the daemon's webhook store, for a profile of
// the SQLite writer (bench/store_apply.sh runs it under callgrind and prints instructions per delivery).
//
// Why: at bench/public (c)@8 the daemon's CPU is the limit, and the writer thread (GroupWriter) that
// applies each delivery to the tables is about a third of it. Its cost per delivery, counted in
// instructions, is the same on a busy machine as on a quiet one, so a change to the writer can be
// measured where a throughput run cannot.
//
// What runs: a fresh store in a temp dir (open_sqlite_store migrates it; open_sqlite_webhook_store with
// the daemon's options), one GitHub endpoint, then N deliveries shaped like the daemon's for a signed
// 1 KiB push (a random delivery key, the stored headers as JSON, uuid v7 ids), handed over as the
// listener does (ingest_async: dedup in memory, the intake log, the writer applies it in batches;
// ingest() when the dedup index cannot decide without a lookup), up to 256 waiting for the log at once.
// It then waits until every delivery is in the tables, checks that N jobs are queued, and prints the
// number of write transactions.
#include <alumia/base/clock.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

namespace {

constexpr const char* k_endpoint = "0190f0a4-0000-7000-8000-000000000001";
constexpr const char* k_user = "local";
constexpr std::size_t k_window = 256;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the daemon stores for a signed GitHub push from bench/public: the request's headers as JSON.
std::string headers_of(const std::string& delivery) {
  return R"([["host","127.0.0.1:8443"],["user-agent","GitHub-Hookshot/bench"],["content-type","application/json"],)"
         R"(["content-length","1024"],["x-github-event","push"],["x-github-delivery",")" +
         delivery + R"("],["x-github-hook-id","1"],["x-hub-signature-256","sha256=)" + std::string(64, '0') + R"("]])";
}

class Waiter {
 public:
  void started() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_outstanding < k_window; });
    ++m_outstanding;
  }
  void finished(bool ok) {
    {
      std::lock_guard lock(m_mutex);
      --m_outstanding;
      if (!ok) ++m_failed;
    }
    m_cv.notify_all();
  }
  std::size_t drain() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_outstanding == 0; });
    return m_failed;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::size_t m_outstanding = 0;
  std::size_t m_failed = 0;
};

int run(const std::filesystem::path& dir, std::size_t n) {
  const auto db = dir / "store.db";
  if (auto s = alumia::open_sqlite_store({db, true}); !s) {
    std::fprintf(stderr, "cannot create the store: %s\n", s.error().message.c_str());
    return 2;
  }
  auto opened = alumia::open_sqlite_webhook_store({.path = db});
  if (!opened) {
    std::fprintf(stderr, "cannot open the webhook store: %s\n", opened.error().message.c_str());
    return 2;
  }
  auto& store = **opened;
  alumia::WebhookEndpointRecord e;
  e.id = k_endpoint;
  e.user_id = k_user;
  e.provider = alumia::Provider::github;
  e.created_at = e.updated_at = now_ms();
  if (!store.insert_endpoint(e)) return 2;

  alumia::SystemRandom random;
  const std::string run_key = random.hex(4);
  const std::string body(1024, 'x');
  const uint64_t transactions_before = store.write_transactions();
  Waiter waiter;
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t now = now_ms();
    const std::string delivery = run_key + "-" + random.hex(4) + "-" + random.hex(4) + "-" + std::to_string(i);
    alumia::IngestRequest r;
    r.endpoint_id = k_endpoint;
    r.user_id = k_user;
    r.provider = alumia::Provider::github;
    r.event_key = "github:" + delivery;
    r.event_type = "push";
    r.headers = headers_of(delivery);
    r.body = body;
    r.received_at = now;
    r.event_id = random.uuid_v7(now);
    r.job_id = random.uuid_v7(now);
    waiter.started();
    if (store.ingest_async(r,
                           [&](alumia::Result<alumia::IngestOutcome> got) { waiter.finished(got && !got->duplicate); }))
      continue;
    auto got = store.ingest(std::move(r));
    waiter.finished(got && !got->duplicate);
  }
  if (const auto failed = waiter.drain(); failed > 0) {
    std::fprintf(stderr, "%zu deliveries were not stored\n", failed);
    return 2;
  }
  auto counts = store.job_counts(k_user);  // a read barrier: every delivery is in the tables after it
  if (!counts) return 2;
  const int64_t queued = (*counts)[k_endpoint][alumia::JobState::queued];
  if (queued != static_cast<int64_t>(n)) {
    std::fprintf(stderr, "%lld jobs queued, expected %zu\n", static_cast<long long>(queued), n);
    return 2;
  }
  const uint64_t transactions = store.write_transactions() - transactions_before;
  std::printf("deliveries %zu\ntransactions %llu\n", n, static_cast<unsigned long long>(transactions));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20'000;
  if (n == 0) {
    std::fprintf(stderr, "usage: bench_store_apply [N]\n");
    return 2;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/alumia-store-apply.XXXXXX";
  if (!::mkdtemp(dir.data())) {
    std::perror("mkdtemp");
    return 2;
  }
  int rc = 2;
  try {
    rc = run(dir, n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
