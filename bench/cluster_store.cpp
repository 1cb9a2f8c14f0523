// The webhook store's side of bench/cluster: ingest and relay throughput of 1, 2 and 3 "daemons" on one
// PostgreSQL database, and of one on SQLite, in the same run (bench/README.md "cluster").
//
// A daemon here is what a daemon holds of the store: its own WebhookStore (the PostgreSQL one has its
// writer thread, its connection pool and its lease holder name). No HTTP: this measures what the store
// lets through when several daemons share it, the ceiling under the receiver and the relay.
//
//   ingest  `--clients` threads per daemon, each sending distinct deliveries to ep1, one in ten a
//           repeat of an earlier one (answered duplicate), for `--seconds`: accepted deliveries per
//           second, all daemons together, and the p99 of one ingest() call.
//   relay   then every daemon drains the backlog: `--workers` threads each claiming up to 32 due jobs
//           and recording each as delivered (finish_job_later, the relay worker's path): jobs per second
//           until none is left, and that none was claimed twice.
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include "../common/store/pg_conn.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace alumia;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string pg;  // conninfo of the maintenance database (CREATE DATABASE is run there)
  std::filesystem::path sqlite_dir;
  std::vector<int> daemons{1, 2, 3};
  int clients = 16;
  int workers = 4;
  double seconds = 5;
  std::size_t body_bytes = 1024;
};

struct Figures {
  double ingest_per_s = 0;
  double ingest_p99_ms = 0;
  int64_t accepted = 0;
  int64_t duplicates = 0;
  int64_t failures = 0;
  double relay_per_s = 0;
  int64_t relayed = 0;
  int64_t claimed_twice = 0;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Figures run(std::vector<std::unique_ptr<WebhookStore>>& daemons, const Options& o) {
  Figures f;
  const std::string body(o.body_bytes, 'x');
  std::atomic<int64_t> seq{0}, accepted{0}, duplicates{0}, failures{0};
  std::mutex m;
  std::vector<double> latencies;
  const auto end = Clock::now() + std::chrono::duration<double>(o.seconds);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& d : daemons)
    for (int c = 0; c < o.clients; ++c)
      threads.emplace_back([&, store = d.get()] {
        std::vector<double> mine;
        while (Clock::now() < end) {
          const int64_t n = seq.fetch_add(1);
          const int64_t key = n % 10 == 9 && n > 100 ? n / 2 : n;  // one in ten repeats an earlier key
          IngestRequest r;
          r.endpoint_id = "ep1";
          r.user_id = "u1";
          r.provider = Provider::github;
          r.event_key = "github:" + std::to_string(key);
          r.event_type = "push";
          r.headers = R"([["x-github-event","push"]])";
          r.body = body;
          r.received_at = now_ms();
          r.event_id = "ev-" + std::to_string(n);
          r.job_id = "job-" + std::to_string(n);
          const auto t0 = Clock::now();
          auto got = store->ingest(std::move(r));
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (!got) ++failures;
          else if (got->duplicate) ++duplicates;
          else ++accepted;
        }
        std::lock_guard lock(m);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  f.accepted = accepted;
  f.duplicates = duplicates;
  f.failures = failures;
  f.ingest_per_s = static_cast<double>(accepted + duplicates) / secs;
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) f.ingest_p99_ms = latencies[latencies.size() * 99 / 100];

  // Relay: drain the backlog.
  threads.clear();
  std::map<std::string, int> claims;
  std::atomic<int64_t> relayed{0};
  const auto relay_start = Clock::now();
  for (auto& d : daemons)
    for (int w = 0; w < o.workers; ++w)
      threads.emplace_back([&, store = d.get()] {
        std::vector<std::string> ids;
        for (;;) {
          const int64_t now = now_ms() + 1000;
          auto jobs = store->claim_due_jobs(now, 32, true);
          if (!jobs || jobs->empty()) break;
          for (auto j : *jobs) {
            ids.push_back(j.id);
            j.state = JobState::succeeded;
            j.attempts = 1;
            j.updated_at = now;
            j.finished_at = now;
            store->finish_job_later(j);
          }
          relayed += static_cast<int64_t>(jobs->size());
        }
        std::lock_guard lock(m);
        for (auto& id : ids) claims[id] += 1;
      });
  for (auto& t : threads) t.join();
  // The outcomes are committed with the writers' next batches: a read waits for them.
  for (auto& d : daemons) (void)d->find_job("job-0");
  const double relay_secs = std::chrono::duration<double>(Clock::now() - relay_start).count();
  f.relayed = relayed;
  f.relay_per_s = static_cast<double>(relayed) / relay_secs;
  for (const auto& [id, n] : claims) f.claimed_twice += n > 1 ? 1 : 0;
  return f;
}

WebhookEndpointRecord endpoint() {
  WebhookEndpointRecord e;
  e.id = "ep1";
  e.user_id = "u1";
  e.provider = Provider::github;
  e.relay_to = "http://127.0.0.1:9/hook";
  e.created_at = e.updated_at = now_ms();
  return e;
}

void print(const std::string& name, const Figures& f) {
  std::printf(
      "%-14s ingest %8.0f/s (p99 %6.1f ms, %lld new, %lld dup, %lld failed)   relay %8.0f jobs/s (%lld, %lld "
      "claimed twice)\n",
      name.c_str(), f.ingest_per_s, f.ingest_p99_ms, static_cast<long long>(f.accepted),
      static_cast<long long>(f.duplicates), static_cast<long long>(f.failures), f.relay_per_s,
      static_cast<long long>(f.relayed), static_cast<long long>(f.claimed_twice));
  std::fflush(stdout);
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_cluster_store --pg CONNINFO --sqlite-dir DIR [--daemons 1,2,3] [--clients 16] "
               "[--workers 4] [--seconds 5]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--pg") o.pg = value;
    else if (flag == "--sqlite-dir") o.sqlite_dir = value;
    else if (flag == "--clients") o.clients = std::atoi(value.c_str());
    else if (flag == "--workers") o.workers = std::atoi(value.c_str());
    else if (flag == "--seconds") o.seconds = std::atof(value.c_str());
    else if (flag == "--daemons") {
      o.daemons.clear();
      std::stringstream list(value);
      for (std::string n; std::getline(list, n, ',');) o.daemons.push_back(std::atoi(n.c_str()));
    } else return usage();
  }
  if (o.pg.empty() || o.sqlite_dir.empty()) return usage();
  bool ok = true;

  {
    std::vector<std::unique_ptr<WebhookStore>> one;
    const auto path = o.sqlite_dir / "store.db";
    auto store = open_sqlite_store({path, true});
    if (!store) {
      std::fprintf(stderr, "cannot open the SQLite store: %s\n", store.error().message.c_str());
      return 2;
    }
    WebhookStoreOptions so;
    so.path = path;
    auto hooks = open_sqlite_webhook_store(so);
    if (!hooks) {
      std::fprintf(stderr, "cannot open the SQLite store: %s\n", hooks.error().message.c_str());
      return 2;
    }
    one.push_back(std::move(*hooks));
    (void)one[0]->insert_endpoint(endpoint());
    const auto f = run(one, o);
    print("sqlite x1", f);
    ok = ok && f.failures == 0 && f.claimed_twice == 0;
  }

  auto admin = pg::Connection::open(o.pg);
  if (!admin) {
    std::fprintf(stderr, "cannot reach PostgreSQL: %s\n", admin.error().message.c_str());
    return 2;
  }
  for (const int n : o.daemons) {
    const std::string db = "cluster_" + std::to_string(n);
    (void)(*admin)->exec("DROP DATABASE IF EXISTS " + db);
    if (auto r = (*admin)->exec("CREATE DATABASE " + db); !r) {
      std::fprintf(stderr, "cannot create %s: %s\n", db.c_str(), r.error().message.c_str());
      return 2;
    }
    std::vector<std::unique_ptr<WebhookStore>> daemons;
    for (int i = 0; i < n; ++i) {
      PgWebhookStoreOptions po;
      po.conninfo = o.pg + " dbname=" + db;
      po.pool_size = static_cast<std::size_t>(o.workers) + 1;
      auto h = open_postgres_webhook_store(po);
      if (!h) {
        std::fprintf(stderr, "cannot open the PostgreSQL webhook store: %s\n", h.error().message.c_str());
        return 2;
      }
      daemons.push_back(std::move(*h));
    }
    (void)daemons[0]->insert_endpoint(endpoint());
    const auto f = run(daemons, o);
    print("postgres x" + std::to_string(n), f);
    ok = ok && f.failures == 0 && f.claimed_twice == 0;
  }
  return ok ? 0 : 1;
}
