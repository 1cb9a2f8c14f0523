// bench_bare_server --durable DIR --store: the durable ceiling with the daemon's own store behind it.
//
// Why: at 8 connections the daemon keeps ~0.64 of the durable ceiling (bench/public (c)), and that
// ceiling only appends each body to an intake log. The daemon must also apply every delivery to the
// SQLite tables (WAL, synchronous=FULL) on the same disk, and each of those commits' flushes carries
// whatever was written before it, the intake log's next write waiting behind it. This ceiling does
// both: each POST body goes through alumia's SqliteWebhookStore (open_sqlite_webhook_store, the
// daemon's options) as a new GitHub delivery: dedup decided in memory, the record appended to the
// intake log (the 200 goes out once it is on disk), then applied by the store's group-committing
// writer (event, job and dedup rows, the checkpoints) in the background, exactly as in the daemon. Its
// dedup key is the request's X-GitHub-Delivery, as the daemon's, so the keys come in the client's order
// (ascending per wrk thread, or random with INGEST_IDS=random) and the dedup index costs what it costs there.
// What it leaves out: HTTP parsing beyond cpp-httplib's, the head checks, routing, the endpoint
// cache, the signature check and the JSON of the stored headers (a fixed string here).
#include "bare_servers.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace bench {

namespace {
constexpr const char* k_endpoint = "00000000-0000-4000-8000-000000000001";
constexpr const char* k_user = "local";
// What the daemon stores for a GitHub delivery from wrk: its headers as JSON, secrets removed.
constexpr const char* k_headers =
    R"([["host","127.0.0.1"],["content-type","application/json"],["x-github-event","push"],)"
    R"(["x-github-delivery","00000000-0000-0000-0000-000000000000"],["content-length","1024"]])";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A UUID-shaped id (36 characters, as the daemon's), unique within the run.
std::string id_of(char kind, uint64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08llx-0000-4000-8%03x-%012llx", static_cast<unsigned long long>(n >> 16),
                static_cast<unsigned>(kind), static_cast<unsigned long long>(n));
  return buf;
}
}  // namespace

std::unique_ptr<StoreSink> StoreSink::open(const std::string& dir) {
  const auto db = std::filesystem::path(dir) / "store.db";
  if (!alumia::open_sqlite_store({db, true})) return nullptr;  // creates and migrates it
  auto store = alumia::open_sqlite_webhook_store({.path = db});
  if (!store) return nullptr;
  alumia::WebhookEndpointRecord e;
  e.id = k_endpoint;
  e.user_id = k_user;
  e.provider = alumia::Provider::github;
  e.created_at = e.updated_at = now_ms();
  if (!(*store)->insert_endpoint(e)) return nullptr;
  auto sink = std::unique_ptr<StoreSink>(new StoreSink());
  sink->m_store = std::move(*store);
  return sink;
}

bool StoreSink::put(std::string body, const std::string& delivery) {
  const uint64_t n = m_next.fetch_add(1, std::memory_order_relaxed);
  alumia::IngestRequest r;
  r.endpoint_id = k_endpoint;
  r.user_id = k_user;
  r.provider = alumia::Provider::github;
  r.event_key = "github:" + (delivery.empty() ? id_of('d', n) : delivery);  // as the daemon's key
  r.event_type = "push";
  r.headers = k_headers;
  r.body = std::move(body);
  r.received_at = now_ms();
  r.event_id = id_of('e', n);
  r.job_id = id_of('j', n);
  auto got = m_store->ingest(std::move(r));
  return got && !got->duplicate;
}

}  // namespace bench
