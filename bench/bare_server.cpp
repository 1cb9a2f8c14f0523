// bench_bare_server: the HTTP ceiling for bench/ingest.sh and bench/public. A server with the same
// transport settings as the daemon's listener that answers every POST with an empty 200 and does
// nothing else. Listens on 127.0.0.1 (port 0 by default, or the last argument), prints the bound port
// on stdout, and exits 0 on SIGTERM or SIGINT.
//
// `--server httplib` (the default): cpp-httplib 0.11.4, a pool of 8 threads that each hold one
// connection for its whole keep-alive life (TCP_NODELAY, keep-alive limits as the daemon had).
// `--server mhd`: GNU libmicrohttpd, the daemon's own listener library with the daemon's listener
// defaults (bare_mhd.cpp): one epoll thread parses every connection and a complete request is handed to
// a pool of 16 workers, the connection suspended meanwhile; so it holds hundreds of connections.
//
// `--durable DIR`: the durable ceiling instead. Each POST body is appended to an intake log in DIR
// (alumia::IntakeLog, the daemon's own group-committed O_DIRECT|O_DSYNC write) and the 200 goes out
// once the write has returned. No verification, no dedup, no SQLite: what any service that answers
// only after a durable write can reach with that server library on this machine.
//
// `--durable DIR --store` (cpp-httplib only): the store ceiling (bare_store.cpp): each body is stored as a
// new delivery by the daemon's own webhook store in DIR (its intake log, then its SQLite writer).
//
// `--delay-ms N` (bench/relay.sh): every POST waits N ms before its 200, a slow relay target.
// `--threads N`: cpp-httplib: a pool of N threads instead of 8 (it holds a thread per kept-alive
// connection, so bench/relay.sh gives its sinks room for the relay's connections and its own polls);
// mhd: N workers instead of 16. `GET /count` answers the number of POSTs received so far.
#include "bare_servers.hpp"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace bench {

int serve_httplib(const BareOptions& options, BareState& state, const sigset_t& stop_signals) {
  httplib::Server server;
  server.set_tcp_nodelay(true);  // without it keep-alive POSTs stall at ~300 req/s (Nagle + delayed ACK)
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_keep_alive_max_count(1000);  // as the daemon had; the library default (5) would reconnect constantly
  server.set_keep_alive_timeout(5);
  server.set_payload_max_length(256 * 1024);
  if (options.threads > 0) {
    const auto threads = static_cast<size_t>(options.threads);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  }
  const int delay_ms = options.delay_ms;
  server.Post(".*", [&state, delay_ms](const httplib::Request& req, httplib::Response& res) {
    state.requests.fetch_add(1, std::memory_order_relaxed);
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (state.store) {
      res.status = state.store->put(req.body, req.get_header_value("X-GitHub-Delivery")) ? 200 : 503;
      res.set_content("", "text/plain");
      return;
    }
    if (state.log) {
      auto seq = state.log->append(req.body, [](uint64_t) {});
      if (!seq) {
        res.status = 503;
        return;
      }
      state.log->release(*seq);  // nothing applies it elsewhere; its space is free again
    }
    res.status = 200;
    res.set_content("", "text/plain");
  });
  server.Get("/count", [&state](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::to_string(state.requests.load()), "text/plain");
  });

  int port = options.port;
  if (options.port == 0) {
    port = server.bind_to_any_port("127.0.0.1");
  } else if (!server.bind_to_port("127.0.0.1", options.port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "bench_bare_server: cannot bind 127.0.0.1:%d\n", options.port);
    return 1;
  }
  std::printf("%d\n", port);
  std::fflush(stdout);

  std::thread serving([&server] { server.listen_after_bind(); });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.stop();
  serving.join();
  return 0;
}

}  // namespace bench

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists, then take them synchronously.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  bench::BareOptions options;
  bench::BareState state;
  bool mhd = false;
  const char* durable = nullptr;
  bool store = false;
  for (int arg = 1; arg < argc; ++arg) {
    const bool has_value = arg + 1 < argc;
    if (has_value && std::strcmp(argv[arg], "--server") == 0) {
      const std::string name = argv[++arg];
      if (name != "httplib" && name != "mhd") {
        std::fprintf(stderr, "bench_bare_server: --server is httplib or mhd, not %s\n", name.c_str());
        return 2;
      }
      mhd = name == "mhd";
    } else if (has_value && std::strcmp(argv[arg], "--threads") == 0) {
      options.threads = std::atoi(argv[++arg]);
    } else if (has_value && std::strcmp(argv[arg], "--delay-ms") == 0) {
      options.delay_ms = std::atoi(argv[++arg]);
    } else if (has_value && std::strcmp(argv[arg], "--durable") == 0) {
      durable = argv[++arg];
    } else if (std::strcmp(argv[arg], "--store") == 0) {
      store = true;
    } else if (arg + 1 == argc && argv[arg][0] != '-') {
      options.port = std::atoi(argv[arg]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_bare_server [--server httplib|mhd] [--threads N] [--delay-ms N] [--durable DIR "
                   "[--store]] [PORT]\n");
      return 2;
    }
  }
  if (store && (durable == nullptr || mhd)) {
    std::fprintf(stderr, "bench_bare_server: --store goes with --durable DIR, on cpp-httplib\n");
    return 2;
  }
  if (store) {
    state.store = bench::StoreSink::open(durable);
    if (!state.store) {
      std::fprintf(stderr, "bench_bare_server: cannot open a webhook store in %s\n", durable);
      return 1;
    }
  } else if (durable != nullptr) {
    std::vector<alumia::IntakeLog::Record> left;
    auto opened = alumia::IntakeLog::open({.path = std::filesystem::path(durable) / "bare.intake"}, left);
    if (!opened || !(*opened)->start()) {
      std::fprintf(stderr, "bench_bare_server: cannot open an intake log in %s\n", durable);
      return 1;
    }
    state.log = std::move(*opened);
  }
  const int rc = mhd ? bench::serve_mhd(options, state, set) : bench::serve_httplib(options, state, set);
  state.store.reset();
  state.log.reset();
  return rc;
}
