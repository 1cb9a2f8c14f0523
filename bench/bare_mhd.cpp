// bench_bare_server --server mhd: the event-driven ceiling, on the daemon's own server library and with
// its listener defaults (daemon/server.cpp, common/config/settings.cpp): MHD in epoll mode on the
// listeners' own event loop (daemon/mhd_loop.hpp) reads and parses every connection; a complete POST is handed to a
// pool of 16 workers (daemon/work_pool.hpp, the public listener's count; queue depth the connection cap)
// with its connection suspended (MHD_suspend_connection); the worker makes the body durable (--durable)
// and resumes it, and the poll thread queues the 200. Connection cap 3,000, 512 per client address,
// idle timeout 5 s, 12 KiB of memory per connection, strict parsing, listen backlog 4,096.
//
// What it leaves out of the daemon's listener, so that it stays an upper bound: the head checks (Host,
// Origin, lengths), routing, the header-deadline sweeper and its per-phase bookkeeping, and everything
// a worker does besides the durable write (verification, dedup, SQLite).
#include "bare_servers.hpp"

#include <mhd_loop.hpp>
#include <work_pool.hpp>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

namespace bench {
namespace {

// The daemon's listener defaults (http-max-connections, http-max-connections-per-ip,
// http-idle-timeout-seconds; server.cpp's k_connection_memory and k_listen_backlog; the public
// listener's workers).
constexpr int k_max_connections = 3000;
constexpr int k_max_connections_per_ip = 512;
constexpr int k_idle_timeout_seconds = 5;
constexpr std::size_t k_connection_memory = 12 * 1024;
constexpr int k_listen_backlog = 4096;
constexpr int k_workers = 16;

struct Exchange {
  enum class Step { body, working, answering };
  Step step = Step::body;
  std::string body;
  std::string answer;
  unsigned status = 200;
};

struct Mhd {
  BareState& state;
  int delay_ms;
  alumia::daemon::WorkPool pool;
  alumia::daemon::MhdLoop loop;
};

MHD_Result queue(MHD_Connection* c, unsigned status, const std::string& text) {
  MHD_Response* r = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain");
  const MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                      const char* upload, size_t* upload_size, void** con_cls) {
  auto& s = *static_cast<Mhd*>(cls);
  auto* ex = static_cast<Exchange*>(*con_cls);
  if (ex == nullptr) {  // the head is complete, no body byte read; an answer queued now would close
    ex = new Exchange;
    *con_cls = ex;
    const std::string_view m = method, u = url;
    if (m == "GET" && u == "/count") {
      ex->step = Exchange::Step::working;
      ex->answer = std::to_string(s.state.requests.load());
    } else if (m != "POST") {
      ex->step = Exchange::Step::working;
      ex->status = 404;
    }
    return MHD_YES;
  }
  switch (ex->step) {
    case Exchange::Step::body:
      if (*upload_size != 0) {
        ex->body.append(upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
      }
      ex->step = Exchange::Step::working;
      s.state.requests.fetch_add(1, std::memory_order_relaxed);
      MHD_suspend_connection(c);
      if (!s.pool.push([&s, c, ex] {
            if (s.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(s.delay_ms));
            if (s.state.log) {
              auto seq = s.state.log->append(std::move(ex->body), [](uint64_t) {});
              if (seq) s.state.log->release(*seq);  // nothing applies it elsewhere; its space is free again
              else ex->status = 503;
            }
            s.loop.resume(c);
          })) {
        ex->status = 503;
        s.loop.resume(c);
      }
      return MHD_YES;
    case Exchange::Step::working:  // resumed (or a GET): answer
      if (*upload_size != 0) {
        *upload_size = 0;  // a GET's body, dropped
        return MHD_YES;
      }
      ex->step = Exchange::Step::answering;
      return queue(c, ex->status, ex->answer);
    case Exchange::Step::answering:
      *upload_size = 0;
      return MHD_YES;
  }
  return MHD_NO;
}

void on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  delete static_cast<Exchange*>(*con_cls);
  *con_cls = nullptr;
}

int listen_socket(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, k_listen_backlog) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int serve_mhd(const BareOptions& options, BareState& state, const sigset_t& stop_signals) {
  const int fd = listen_socket(options.port);
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    std::fprintf(stderr, "bench_bare_server: cannot bind 127.0.0.1:%d\n", options.port);
    return 1;
  }
  Mhd s{.state = state,
        .delay_ms = options.delay_ms,
        .pool{options.threads > 0 ? options.threads : k_workers, static_cast<std::size_t>(k_max_connections)},
        .loop{}};
  // As the daemon's listeners: the loop accepts (mhd_loop.hpp), MHD gets no listen socket.
  const unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
  MHD_OptionItem items[] = {
      {MHD_OPTION_CONNECTION_LIMIT, k_max_connections, nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, k_max_connections_per_ip, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, k_idle_timeout_seconds, nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(k_connection_memory), nullptr},
      {MHD_OPTION_STRICT_FOR_CLIENT, 1, nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed), nullptr},
      {MHD_OPTION_END, 0, nullptr},
  };
  MHD_Daemon* d =
      MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, &s, MHD_OPTION_ARRAY, items, MHD_OPTION_END);
  if (d == nullptr || !s.loop.start(d, "bare-mhd", fd)) {
    if (d != nullptr) MHD_stop_daemon(d);
    ::close(fd);
    std::fprintf(stderr, "bench_bare_server: cannot start libmicrohttpd\n");
    return 1;
  }
  std::printf("%d\n", ntohs(bound.sin_port));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  s.pool.stop();  // queued requests finish and resume their connections (MHD must hold none suspended)
  s.loop.stop();
  MHD_stop_daemon(d);
  ::close(fd);
  return 0;
}

}  // namespace bench
