#pragma once
// The two HTTP ceilings of bench_bare_server (bare_server.cpp): the same options, served either by
// cpp-httplib (bare_server.cpp) or by GNU libmicrohttpd (bare_mhd.cpp), the daemon's own server library.
#include <alumia/store/intake_log.hpp>
#include <alumia/store/webhook_store.hpp>

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace bench {

struct BareOptions {
  int threads = 0;   // 0: the server's default (cpp-httplib: 8 pool threads; MHD: 16 workers, the daemon's)
  int delay_ms = 0;  // every POST waits this long before its 200
  int port = 0;      // 0: any; the bound port is printed on stdout
};

// --durable DIR --store (bare_store.cpp): each POST body is stored as a new delivery by the daemon's
// webhook store in DIR/store.db, its intake log and its SQLite writer; the 200 goes out once it is durable.
class StoreSink {
 public:
  static std::unique_ptr<StoreSink> open(const std::string& dir);  // null: cannot open or migrate
  // The request's delivery id is the event key when it has one (so the key order is the client's: ascending
  // or random), else a counter's. false: not stored (answer 503).
  bool put(std::string body, const std::string& delivery);

 private:
  StoreSink() = default;
  std::unique_ptr<alumia::WebhookStore> m_store;
  std::atomic<uint64_t> m_next{0};
};

struct BareState {
  std::unique_ptr<alumia::IntakeLog> log;  // --durable: each POST body is appended before its 200
  std::unique_ptr<StoreSink> store;        // --durable --store (cpp-httplib only): through the webhook store
  std::atomic<uint64_t> requests{0};       // POSTs received (GET /count)
};

// Serve on 127.0.0.1 until one of `stop_signals` arrives (blocked in every thread); 0 or 1 (cannot bind).
int serve_httplib(const BareOptions& options, BareState& state, const sigset_t& stop_signals);
int serve_mhd(const BareOptions& options, BareState& state, const sigset_t& stop_signals);

}  // namespace bench
