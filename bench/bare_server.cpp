// bench_bare_server: the HTTP ceiling for bench/ingest.sh. A cpp-httplib server with the same
// transport settings as the daemon's listener (TCP_NODELAY, keep-alive limits, default thread pool)
// that answers every POST with an empty 200 and does nothing else. Listens on 127.0.0.1 (port 0 by
// default, or argv[1]), prints the bound port on stdout, and exits 0 on SIGTERM or SIGINT.
//
// `--durable DIR`: the durable ceiling instead. Each POST body is appended to an intake log in DIR
// (alumia::IntakeLog, the daemon's own group-committed O_DIRECT|O_DSYNC write) and the 200 goes out
// once the write has returned. No verification, no dedup, no SQLite: what any service that answers
// only after a durable write can reach with cpp-httplib on this machine.
//
// `--delay-ms N` (before the port; bench/relay.sh): every POST waits N ms before its 200, a slow relay
// target. `--threads N` (first): a pool of N threads instead of the default 8; cpp-httplib holds a
// thread per kept-alive connection, so bench/relay.sh gives its sinks room for the relay's connections
// and its own polls. `GET /count` answers the number of POSTs received so far (bench/relay.sh polls it).
#include <alumia/store/intake_log.hpp>

#include <atomic>
#include <chrono>

#include <httplib.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists, then take them synchronously below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  httplib::Server server;
  server.set_tcp_nodelay(true);  // without it keep-alive POSTs stall at ~300 req/s (Nagle + delayed ACK)
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_keep_alive_max_count(1000);  // as the daemon; the library default (5) would reconnect constantly
  server.set_keep_alive_timeout(5);
  server.set_payload_max_length(256 * 1024);
  std::unique_ptr<alumia::IntakeLog> log;
  int arg = 1;
  int delay_ms = 0;
  if (argc > arg + 1 && std::strcmp(argv[arg], "--threads") == 0) {
    const auto threads = static_cast<size_t>(std::atoi(argv[arg + 1]));
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    arg += 2;
  }
  if (argc > arg + 1 && std::strcmp(argv[arg], "--delay-ms") == 0) {
    delay_ms = std::atoi(argv[arg + 1]);
    arg += 2;
  }
  if (argc > arg + 1 && std::strcmp(argv[arg], "--durable") == 0) {
    std::vector<alumia::IntakeLog::Record> left;
    auto opened = alumia::IntakeLog::open({.path = std::filesystem::path(argv[arg + 1]) / "bare.intake"}, left);
    if (!opened || !(*opened)->start()) {
      std::fprintf(stderr, "bench_bare_server: cannot open an intake log in %s\n", argv[arg + 1]);
      return 1;
    }
    log = std::move(*opened);
    arg += 2;
  }
  std::atomic<uint64_t> requests{0};
  server.Post(".*", [&log, &requests, delay_ms](const httplib::Request& req, httplib::Response& res) {
    requests.fetch_add(1, std::memory_order_relaxed);
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (log) {
      auto seq = log->append(req.body, [](uint64_t) {});
      if (!seq) {
        res.status = 503;
        return;
      }
      log->release(*seq);  // nothing applies it elsewhere; its space is free again
    }
    res.status = 200;
    res.set_content("", "text/plain");
  });
  server.Get("/count", [&requests](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::to_string(requests.load()), "text/plain");
  });

  const int wanted = argc > arg ? std::atoi(argv[arg]) : 0;
  int port = wanted;
  if (wanted == 0) {
    port = server.bind_to_any_port("127.0.0.1");
  } else if (!server.bind_to_port("127.0.0.1", wanted)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "bench_bare_server: cannot bind 127.0.0.1:%d\n", wanted);
    return 1;
  }
  std::printf("%d\n", port);
  std::fflush(stdout);

  std::thread serving([&server] { server.listen_after_bind(); });
  int sig = 0;
  sigwait(&set, &sig);
  server.stop();
  serving.join();
  log.reset();
  return 0;
}
