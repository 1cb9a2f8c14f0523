#pragma once
// The two HTTP ceilings of bench_bare_server (bare_server.cpp): the same options, served either by
// cpp-httplib (bare_server.cpp) or by GNU libmicrohttpd (bare_mhd.cpp), the daemon's own server library.
#include <alumia/store/intake_log.hpp>

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace bench {

struct BareOptions {
  int threads = 0;   // 0: the server's default (cpp-httplib: 8 pool threads; MHD: 16 workers, the daemon's)
  int delay_ms = 0;  // every POST waits this long before its 200
  int port = 0;      // 0: any; the bound port is printed on stdout
};

struct BareState {
  std::unique_ptr<alumia::IntakeLog> log;  // --durable: each POST body is appended before its 200
  std::atomic<uint64_t> requests{0};       // POSTs received (GET /count)
};

// Serve on 127.0.0.1 until one of `stop_signals` arrives (blocked in every thread); 0 or 1 (cannot bind).
int serve_httplib(const BareOptions& options, BareState& state, const sigset_t& stop_signals);
int serve_mhd(const BareOptions& options, BareState& state, const sigset_t& stop_signals);

}  // namespace bench
