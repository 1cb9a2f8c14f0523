// spike13 httplib_server: today's model, for the same runs. bench/bare_server.cpp (cpp-httplib
// 0.11.4 with the daemon's transport settings: TCP_NODELAY, read/write timeouts 10 s, keep-alive 5 s
// and 1000 requests, default pool of 8 threads, listen backlog 5 compiled into Debian's library) plus
// a second server on the control port answering GET /status, as the daemon runs two listeners in
// one process. POST /hook makes its body durable (--durable DIR) or sleeps (--delay-ms) before 200.
// None of the limits exist here; it is the baseline.
#include "common.hpp"

#include <httplib.h>
#include <signal.h>

namespace {
void settings(httplib::Server& s) {
  s.set_tcp_nodelay(true);
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(5);
  s.set_payload_max_length(256 * 1024);
}
}  // namespace

int main(int argc, char** argv) {
  const spike::Options o = spike::parse_options(argc, argv);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  spike::ignore_sigpipe();

  spike::Durable durable(o);
  httplib::Server pub, ctl;
  settings(pub);
  settings(ctl);
  pub.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    res.status = durable.commit(req.body) ? 200 : 503;
    res.set_content("", "text/plain");
  });
  ctl.Get("/status", [](const httplib::Request&, httplib::Response& res) { res.set_content("", "text/plain"); });
  if (!pub.bind_to_port("0.0.0.0", o.public_port) || !ctl.bind_to_port("0.0.0.0", o.control_port)) {
    std::fprintf(stderr, "bind failed\n");
    return 1;
  }
  std::thread a([&] { pub.listen_after_bind(); });
  std::thread b([&] { ctl.listen_after_bind(); });
  std::printf("httplib_server public=%d control=%d\n", o.public_port, o.control_port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::_Exit(0);
}
