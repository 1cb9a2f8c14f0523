#pragma once
// Shared by the spike-13 prototype servers (ev_server, mhd_server, httplib_server): options, the
// durable step, the bounded work queue and the strict header rules. A spike, not daemon code.
#include <alumia/store/intake_log.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace spike {

struct Options {
  int public_port = 18080;
  int control_port = 18081;
  std::string durable_dir;  // append each body to an IntakeLog here before the 200
  int delay_ms = 0;         // or sleep this long (when no durable dir)
  int workers = 16;         // public work pool
  int queue = 512;          // bounded queue depth: 503 beyond it
  int io_threads = 1;       // event/poll threads of the public listener
  int per_ip = 256;         // connections per client address
  int max_conns = 8000;     // connections per listener
  int header_timeout = 10;  // s from connection (or previous reply) to complete headers -> 408 + close
  int idle_timeout = 5;     // s of inactivity -> close
  int max_header_bytes = 8192;
  int max_headers = 64;
  std::size_t body_cap = 256 * 1024;
  int backlog = 4096;
  int strict = 1;     // MHD_OPTION_STRICT_FOR_CLIENT (mhd_server only)
  bool judge = true;  // --judge 0: library behaviour only (for the probes)
};

inline Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view k = argv[i];
    const char* v = argv[i + 1];
    auto num = [&] { return std::atoi(v); };
    if (k == "--public-port") o.public_port = num();
    else if (k == "--control-port") o.control_port = num();
    else if (k == "--durable") o.durable_dir = v;
    else if (k == "--delay-ms") o.delay_ms = num();
    else if (k == "--workers") o.workers = num();
    else if (k == "--queue") o.queue = num();
    else if (k == "--io-threads") o.io_threads = num();
    else if (k == "--per-ip") o.per_ip = num();
    else if (k == "--max-conns") o.max_conns = num();
    else if (k == "--header-timeout") o.header_timeout = num();
    else if (k == "--idle-timeout") o.idle_timeout = num();
    else if (k == "--max-header-bytes") o.max_header_bytes = num();
    else if (k == "--max-headers") o.max_headers = num();
    else if (k == "--judge") o.judge = num() != 0;
    else if (k == "--strict") o.strict = num();
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      std::exit(2);
    }
  }
  return o;
}

// The durable step before a 200: the daemon's own group-committed O_DIRECT|O_DSYNC intake log
// (as bench_bare_server --durable), or a fixed delay, or nothing.
class Durable {
 public:
  explicit Durable(const Options& o) : m_delay(o.delay_ms) {
    if (o.durable_dir.empty()) return;
    std::vector<alumia::IntakeLog::Record> left;
    auto opened = alumia::IntakeLog::open({.path = o.durable_dir + "/spike.intake"}, left);
    if (!opened || !(*opened)->start()) {
      std::fprintf(stderr, "cannot open an intake log in %s\n", o.durable_dir.c_str());
      std::exit(1);
    }
    m_log = std::move(*opened);
  }
  // Blocks until the body is durable; false when it could not be written (-> 503).
  bool commit(std::string body) {
    if (m_log) {
      auto seq = m_log->append(std::move(body), [](uint64_t) {});
      if (!seq) return false;
      m_log->release(*seq);
    } else if (m_delay > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(m_delay));
    }
    return true;
  }

 private:
  int m_delay;
  std::unique_ptr<alumia::IntakeLog> m_log;
};

// A fixed pool of workers over a bounded queue (the shape of Bitcoin Core's WorkQueue): push()
// refuses when the queue is full, and the caller answers 503 at once.
class WorkPool {
 public:
  WorkPool(int threads, std::size_t depth) : m_depth(depth) {
    for (int i = 0; i < threads; ++i) m_threads.emplace_back([this] { run(); });
  }
  ~WorkPool() {
    {
      std::lock_guard lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) t.join();
  }
  bool push(std::function<void()> job) {
    {
      std::lock_guard lock(m_mutex);
      if (m_queue.size() >= m_depth) return false;
      m_queue.push_back(std::move(job));
    }
    m_cv.notify_one();
    return true;
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_stop || !m_queue.empty(); });
        if (m_stop && m_queue.empty()) return;
        job = std::move(m_queue.front());
        m_queue.pop_front();
      }
      job();
    }
  }
  std::size_t m_depth;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_queue;
  std::vector<std::thread> m_threads;
  bool m_stop = false;
};

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// The strict transport rules the issue asks for (item 2), on the parsed request head, before any
// body is read. Every refusal closes the connection (close = true).
struct Verdict {
  int status = 0;  // 0: admitted
  const char* reason = "";
  std::size_t length = 0;
};
using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

inline Verdict judge_head(std::string_view method, const HeaderList& headers, const Options& o) {
  if (!o.judge) return {};
  int hosts = 0, lengths = 0;
  std::string_view cl;
  if (headers.size() > static_cast<std::size_t>(o.max_headers)) return {431, "too many header lines"};
  for (const auto& [k, v] : headers) {
    if (iequals(k, "host")) ++hosts;
    else if (iequals(k, "content-length")) ++lengths, cl = v;
    else if (iequals(k, "transfer-encoding")) return {411, "Transfer-Encoding refused; send Content-Length"};
  }
  if (hosts != 1) return {400, "exactly one Host header"};
  if (lengths > 1) return {400, "more than one Content-Length"};
  const bool body_method = method == "POST" || method == "PUT" || method == "PATCH";
  Verdict v;
  if (lengths == 1) {
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), v.length);
    if (ec != std::errc{} || p != cl.data() + cl.size() || cl.empty()) return {400, "Content-Length is not a number"};
  } else if (body_method) {
    return {411, "send a Content-Length"};
  }
  if (!body_method && v.length > 0) return {400, "a body on a method that takes none"};
  if (v.length > o.body_cap) return {413, "body over the cap"};
  return v;
}

inline void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
}

// A loopback TCP listening socket with a real backlog (cpp-httplib 0.11's is fixed at 5).
inline int listen_socket(int port, int backlog) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);  // the load tool comes from many 127.x.y.z
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    std::perror("bind/listen");
    std::exit(1);
  }
  return fd;
}

inline const char* status_text(int s) {
  switch (s) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// A canned reply written straight to the socket by code that holds no request object (a refused
// connection, a header deadline); best effort, then the caller closes.
inline void send_canned(int fd, int status) {
  char buf[160];
  int n = std::snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status,
                        status_text(status));
  (void)!::send(fd, buf, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace spike
