// spike13 load: the client scenarios in one epoll thread, each client from its own loopback
// source address (127.b.c.d) so per-IP caps see providers and attackers apart.
//
//   load pool  --port P [--clients 2000 --addrs 10 --requests 3 --hold-ms 2000 --timeout-ms 10000]
//     (a) each client connects, sends --requests POSTs one after another on its keep-alive
//     connection, then holds it open until --hold-ms after it connected. Clients come from --addrs
//     distinct addresses (127.1.x.y). A request's latency counts from its send, the first one's from
//     the connect (so a full accept backlog shows).
//   load mixed --port P --control-port C [--deliver 32 --trickle 1000 --idle 1000 --warm-s 3
//              --duration-s 10 --probe-ms 50]
//     (b) --deliver keep-alive connections (from 127.1.0.1-2) send POSTs back to back for
//     --duration-s, after --warm-s during which the attack connects: --trickle connections (each
//     from its own 127.2.x.y) send a request line and Host, then one header line a second, forever;
//     --idle connections (127.3.x.y) send nothing. Both reconnect when the server closes them. A
//     probe opens a new connection to the control port every --probe-ms and times GET /status.
// Prints a human summary and one RESULT line of key=value.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

enum class Kind { pool, deliver, trickle, idle, probe };

struct Conn {
  Kind kind;
  uint32_t src = 0;  // host order; 0: no bind
  int port = 0;
  int fd = -1;
  bool connected = false;
  bool awaiting = false;  // a request is out
  std::string out{};
  std::size_t out_off = 0;
  std::string in{};
  double t_conn = 0, t_req = 0, hold_until = 0, next_trickle = 0, retry_at = 0;
  int done = 0;  // requests answered on this client (pool)
  bool finished = false;
};

struct Stats {
  std::vector<double> lat;  // ms
  long ok = 0, errors = 0, timeouts = 0, sent = 0;
  std::map<int, long> codes;
  void add(int code, double ms) {
    codes[code]++;
    if (code >= 200 && code < 300) ok++;
    lat.push_back(ms);
  }
  double pct(double p) {
    if (lat.empty()) return 0;
    std::sort(lat.begin(), lat.end());
    std::size_t i = static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1) + 0.5);
    return lat[std::min(i, lat.size() - 1)];
  }
  std::string codes_str() const {
    std::string s;
    for (auto [c, n] : codes) s += (s.empty() ? "" : ",") + std::to_string(c) + ":" + std::to_string(n);
    return s.empty() ? "-" : s;
  }
};

struct Args {
  std::string mode;
  int port = 0, control_port = 0, clients = 2000, addrs = 10, requests = 3, hold_ms = 2000, timeout_ms = 10000;
  int deliver = 32, trickle = 1000, idle = 1000, probe_ms = 50, body = 1024;
  double warm_s = 3, duration_s = 10;
};

uint32_t addr(int b, int k) {
  return (127u << 24) | (static_cast<uint32_t>(b) << 16) | (static_cast<uint32_t>(k / 250) << 8) |
         static_cast<uint32_t>(k % 250 + 1);
}

class Load {
 public:
  explicit Load(const Args& a) : m_a(a) {
    m_ep = epoll_create1(0);
    m_body.assign(static_cast<std::size_t>(a.body), 'x');
    m_post = "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(m_body.size()) + "\r\n\r\n" + m_body;
  }

  int run() {
    if (m_a.mode == "pool") return run_pool();
    if (m_a.mode == "mixed") return run_mixed();
    std::fprintf(stderr, "mode: pool or mixed\n");
    return 2;
  }

 private:
  const Args& m_a;
  int m_ep;
  std::string m_body, m_post;
  std::vector<Conn*> m_conns;
  Stats m_main, m_probe;
  long m_attack_closed = 0, m_attack_connect_fail = 0, m_reconnects = 0, m_idle_closed_by_server = 0;
  std::map<int, long> m_attack_codes;
  bool m_measuring = true;
  double m_end = 0;

  void open(Conn* c) {
    c->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
      std::perror("socket");
      std::exit(2);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->src != 0) {
      sockaddr_in s{};
      s.sin_family = AF_INET;
      s.sin_addr.s_addr = htonl(c->src);
      if (::bind(c->fd, reinterpret_cast<sockaddr*>(&s), sizeof s) != 0) std::perror("bind");
    }
    sockaddr_in d{};
    d.sin_family = AF_INET;
    d.sin_port = htons(static_cast<uint16_t>(c->port));
    d.sin_addr.s_addr = htonl(0x7f000001);
    c->connected = false;
    c->awaiting = false;
    c->in.clear();
    c->out.clear();
    c->out_off = 0;
    c->t_conn = now();
    int r = ::connect(c->fd, reinterpret_cast<sockaddr*>(&d), sizeof d);
    if (r != 0 && errno != EINPROGRESS) {
      fail(c, true);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    epoll_ctl(m_ep, EPOLL_CTL_ADD, c->fd, &ev);
  }

  void close_fd(Conn* c) {
    if (c->fd >= 0) {
      epoll_ctl(m_ep, EPOLL_CTL_DEL, c->fd, nullptr);
      ::close(c->fd);
    }
    c->fd = -1;
    c->connected = false;
    c->awaiting = false;
  }

  // A request sent right after its connection opened counts from the connect.
  void send_req(Conn* c, const std::string& bytes, bool is_request, bool from_connect = false) {
    c->out.append(bytes);
    if (is_request) {
      c->awaiting = true;
      c->t_req = from_connect ? c->t_conn : now();
    }
    flush(c);
  }

  void flush(Conn* c) {
    if (!c->connected || c->fd < 0) return;
    while (c->out_off < c->out.size()) {
      ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_off += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        return;
      } else {
        fail(c, false);
        return;
      }
    }
    c->out.clear();
    c->out_off = 0;
  }

  Stats& stats_of(Conn* c) { return c->kind == Kind::probe ? m_probe : m_main; }
  bool counted(Conn* c) { return c->kind == Kind::probe || m_measuring; }

  // The server closed, reset or refused the connection (or a send failed).
  void fail(Conn* c, bool connect_failed) {
    const bool had_request = c->awaiting;
    close_fd(c);
    switch (c->kind) {
      case Kind::pool:
        if (had_request || connect_failed) m_main.errors++;
        else if (!c->finished) m_idle_closed_by_server++;
        if (had_request || connect_failed) c->done++;  // that request failed; go on with the next
        if (!c->finished && c->done < m_a.requests) {
          m_reconnects++;
          c->retry_at = now() + 0.05;
        } else {
          c->finished = true;
        }
        break;
      case Kind::deliver:
        if ((had_request || connect_failed) && m_measuring) m_main.errors++;
        c->retry_at = now() + 0.01;
        break;
      case Kind::probe:
        m_probe.errors++;
        c->finished = true;
        break;
      case Kind::trickle:
      case Kind::idle:
        if (connect_failed) m_attack_connect_fail++;
        else m_attack_closed++;
        c->retry_at = now() + 0.05;
        break;
    }
  }

  void on_connected(Conn* c) {
    c->connected = true;
    switch (c->kind) {
      case Kind::pool:
      case Kind::deliver:
        send_req(c, m_post, true, true);
        break;
      case Kind::probe:
        send_req(c, "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", true, true);
        break;
      case Kind::trickle:
        send_req(c, "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\n", false);
        c->next_trickle = now() + 1.0;
        break;
      case Kind::idle:
        break;
    }
  }

  // Parses complete responses out of c->in.
  void on_data(Conn* c) {
    for (;;) {
      std::size_t he = c->in.find("\r\n\r\n");
      if (he == std::string::npos) return;
      int code = std::atoi(c->in.c_str() + 9);
      std::size_t cl = 0;
      bool close = false;
      std::string_view head(c->in.data(), he);
      for (std::size_t p = head.find("\r\n"); p != std::string_view::npos; p = head.find("\r\n", p + 2)) {
        std::string_view line = head.substr(p + 2, head.find("\r\n", p + 2) - (p + 2));
        auto starts = [&](const char* name) {
          return line.size() > std::strlen(name) && strncasecmp(line.data(), name, std::strlen(name)) == 0;
        };
        if (starts("content-length:")) cl = std::strtoul(std::string(line.substr(15)).c_str(), nullptr, 10);
        if (starts("connection:") && line.find("close") != std::string_view::npos) close = true;
      }
      if (c->in.size() < he + 4 + cl) return;
      c->in.erase(0, he + 4 + cl);
      on_response(c, code, close);
      if (c->fd < 0) return;
    }
  }

  void on_response(Conn* c, int code, bool close) {
    const double t = now();
    switch (c->kind) {
      case Kind::pool:
        c->awaiting = false;
        m_main.add(code, (t - c->t_req) * 1000);
        c->done++;
        if (c->done >= m_a.requests) {
          c->finished = true;
          if (close) close_fd(c);
          else c->hold_until = c->t_conn + m_a.hold_ms / 1000.0;
        } else if (close) {
          close_fd(c);
          m_reconnects++;
          c->retry_at = t;
        } else {
          send_req(c, m_post, true);
        }
        break;
      case Kind::deliver:
        c->awaiting = false;
        if (m_measuring) m_main.add(code, (t - c->t_req) * 1000);
        if (close) {
          close_fd(c);
          c->retry_at = t;
        } else if (t < m_end) {
          send_req(c, m_post, true);
        }
        break;
      case Kind::probe:
        m_probe.add(code, (t - c->t_req) * 1000);
        close_fd(c);
        c->finished = true;
        break;
      case Kind::trickle:
      case Kind::idle:
        m_attack_codes[code]++;
        break;
    }
  }

  void on_event(Conn* c, uint32_t ev) {
    if (c->fd < 0) return;
    if (!c->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(c, true);
      on_connected(c);
      if (c->fd < 0) return;
    }
    if (ev & EPOLLOUT) flush(c);
    if (c->fd < 0) return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[16384];
      for (;;) {
        ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
          c->in.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        if (n < 0 && errno == EAGAIN) break;
        on_data(c);  // a reply followed by the close
        if (c->fd >= 0) fail(c, false);
        return;
      }
      on_data(c);
    }
  }

  void poll_once(int ms) {
    epoll_event evs[512];
    int n = epoll_wait(m_ep, evs, 512, ms);
    for (int i = 0; i < n; ++i) on_event(static_cast<Conn*>(evs[i].data.ptr), evs[i].events);
  }

  // Timeouts, holds, trickles and retries: scanned every 20 ms.
  void tick(double t) {
    for (Conn* c : m_conns) {
      const double limit = m_a.timeout_ms / 1000.0;
      const bool late =
          c->fd >= 0 && ((c->awaiting && t - c->t_req > limit) || (!c->connected && t - c->t_conn > limit));
      if (late && (c->kind == Kind::trickle || c->kind == Kind::idle)) {  // a connect that never completed
        m_attack_connect_fail++;
        close_fd(c);
        c->retry_at = t;
        continue;
      }
      if (late) {
        if (c->kind == Kind::probe) m_probe.timeouts++;
        else if (counted(c)) m_main.timeouts++;
        c->awaiting = false;
        close_fd(c);
        if (c->kind == Kind::pool) {
          c->done++;
          if (c->done < m_a.requests) c->retry_at = t;
          else c->finished = true;
        } else if (c->kind == Kind::probe) {
          c->finished = true;
        } else {
          c->retry_at = t;
        }
        continue;
      }
      if (c->kind == Kind::pool && c->finished && c->fd >= 0 && c->hold_until > 0 && t >= c->hold_until) close_fd(c);
      if (c->kind == Kind::trickle && c->fd >= 0 && c->connected && t >= c->next_trickle) {
        send_req(c, "X-Trickle: 1\r\n", false);
        c->next_trickle = t + 1.0;
      }
      if (c->fd < 0 && !c->finished && c->retry_at > 0 && t >= c->retry_at) {
        c->retry_at = 0;
        if (c->kind == Kind::deliver && t >= m_end) continue;
        open(c);
      }
    }
  }

  int run_pool() {
    for (int i = 0; i < m_a.clients; ++i) {
      auto* c = new Conn{.kind = Kind::pool, .src = addr(1, i % m_a.addrs), .port = m_a.port};
      m_conns.push_back(c);
    }
    const double t0 = now();
    for (Conn* c : m_conns) open(c);
    double last = 0;
    for (;;) {
      poll_once(5);
      const double t = now();
      if (t - last >= 0.02) {
        tick(t);
        last = t;
      }
      bool all = std::all_of(m_conns.begin(), m_conns.end(), [](Conn* c) { return c->finished && c->fd < 0; });
      if (all || t - t0 > 60) break;
    }
    const double secs = now() - t0;
    const long expected = static_cast<long>(m_a.clients) * m_a.requests;
    std::printf("pool: %d clients from %d addresses, %d requests each, hold %d ms: %.1f s\n", m_a.clients, m_a.addrs,
                m_a.requests, m_a.hold_ms, secs);
    std::printf("  answered %zu of %ld (2xx %ld; codes %s), errors %ld, timeouts %ld, reconnects %ld\n",
                m_main.lat.size(), expected, m_main.ok, m_main.codes_str().c_str(), m_main.errors, m_main.timeouts,
                m_reconnects);
    std::printf("  latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f; held connections closed by the server %ld\n",
                m_main.pct(0.5), m_main.pct(0.9), m_main.pct(0.99), m_main.pct(1.0), m_idle_closed_by_server);
    std::printf(
        "RESULT mode=pool expected=%ld answered=%zu ok=%ld codes=%s errors=%ld timeouts=%ld p50_ms=%.2f "
        "p99_ms=%.2f max_ms=%.2f seconds=%.2f\n",
        expected, m_main.lat.size(), m_main.ok, m_main.codes_str().c_str(), m_main.errors, m_main.timeouts,
        m_main.pct(0.5), m_main.pct(0.99), m_main.pct(1.0), secs);
    return 0;
  }

  int run_mixed() {
    std::vector<Conn*> attack, deliver;
    for (int i = 0; i < m_a.trickle; ++i)
      attack.push_back(new Conn{.kind = Kind::trickle, .src = addr(2, i), .port = m_a.port});
    for (int i = 0; i < m_a.idle; ++i)
      attack.push_back(new Conn{.kind = Kind::idle, .src = addr(3, i), .port = m_a.port});
    for (int i = 0; i < m_a.deliver; ++i)
      deliver.push_back(new Conn{.kind = Kind::deliver, .src = addr(1, i % 2), .port = m_a.port});
    m_conns = attack;
    const double t0 = now();
    m_measuring = false;
    for (Conn* c : attack) open(c);
    const double t_start = t0 + (attack.empty() ? 0.5 : m_a.warm_s);
    m_end = t_start + m_a.duration_s;
    bool started = false;
    double last = 0, next_probe = t_start;
    for (;;) {
      poll_once(2);
      const double t = now();
      if (!started && t >= t_start) {
        started = true;
        m_measuring = true;
        for (Conn* c : deliver) {
          m_conns.push_back(c);
          open(c);
        }
      }
      if (started && t < m_end && t >= next_probe) {
        auto* p = new Conn{.kind = Kind::probe, .src = 0, .port = m_a.control_port};
        m_conns.push_back(p);
        open(p);
        next_probe += m_a.probe_ms / 1000.0;
      }
      if (t - last >= 0.02) {
        tick(t);
        last = t;
      }
      if (t >= m_end) {
        bool busy = std::any_of(m_conns.begin(), m_conns.end(), [](Conn* c) {
          return c->fd >= 0 && c->awaiting && (c->kind == Kind::deliver || c->kind == Kind::probe);
        });
        if (!busy || t > m_end + 11) break;
      }
    }
    long attack_open = 0;
    for (Conn* c : attack) attack_open += c->fd >= 0 && c->connected;
    std::string acodes;
    for (auto [c, n] : m_attack_codes)
      acodes += (acodes.empty() ? "" : ",") + std::to_string(c) + ":" + std::to_string(n);
    const double secs = m_a.duration_s;
    std::printf("mixed: %d delivery connections for %.0f s; attack %d trickle + %d idle (warm %.0f s)\n", m_a.deliver,
                secs, m_a.trickle, m_a.idle, m_a.warm_s);
    std::printf(
        "  deliveries %zu (%.0f req/s; 2xx %ld; codes %s), errors %ld, timeouts %ld; ms p50 %.2f p99 %.2f max %.2f\n",
        m_main.lat.size(), static_cast<double>(m_main.lat.size()) / secs, m_main.ok, m_main.codes_str().c_str(),
        m_main.errors, m_main.timeouts, m_main.pct(0.5), m_main.pct(0.99), m_main.pct(1.0));
    std::printf("  control probes %zu (2xx %ld), errors %ld, timeouts %ld; ms p50 %.2f p99 %.2f max %.2f\n",
                m_probe.lat.size(), m_probe.ok, m_probe.errors, m_probe.timeouts, m_probe.pct(0.5), m_probe.pct(0.99),
                m_probe.pct(1.0));
    std::printf("  attack: open at the end %ld of %zu; closed by the server %ld; connect failures %ld; replies %s\n",
                attack_open, attack.size(), m_attack_closed, m_attack_connect_fail,
                acodes.empty() ? "-" : acodes.c_str());
    std::printf(
        "RESULT mode=mixed deliveries=%zu rps=%.0f ok=%ld codes=%s errors=%ld timeouts=%ld p50_ms=%.2f p99_ms=%.2f "
        "max_ms=%.2f probes=%zu probe_ok=%ld probe_errors=%ld probe_timeouts=%ld probe_p50_ms=%.2f "
        "probe_p99_ms=%.2f probe_max_ms=%.2f attack_open=%ld attack_closed=%ld attack_replies=%s\n",
        m_main.lat.size(), static_cast<double>(m_main.lat.size()) / secs, m_main.ok, m_main.codes_str().c_str(),
        m_main.errors, m_main.timeouts, m_main.pct(0.5), m_main.pct(0.99), m_main.pct(1.0), m_probe.lat.size(),
        m_probe.ok, m_probe.errors, m_probe.timeouts, m_probe.pct(0.5), m_probe.pct(0.99), m_probe.pct(1.0),
        attack_open, m_attack_closed, acodes.empty() ? "-" : acodes.c_str());
    return 0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: load pool|mixed --port P [...]\n");
    return 2;
  }
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string_view k = argv[i];
    const char* v = argv[i + 1];
    int n = std::atoi(v);
    if (k == "--port") a.port = n;
    else if (k == "--control-port") a.control_port = n;
    else if (k == "--clients") a.clients = n;
    else if (k == "--addrs") a.addrs = n;
    else if (k == "--requests") a.requests = n;
    else if (k == "--hold-ms") a.hold_ms = n;
    else if (k == "--timeout-ms") a.timeout_ms = n;
    else if (k == "--deliver") a.deliver = n;
    else if (k == "--trickle") a.trickle = n;
    else if (k == "--idle") a.idle = n;
    else if (k == "--probe-ms") a.probe_ms = n;
    else if (k == "--body") a.body = n;
    else if (k == "--warm-s") a.warm_s = std::atof(v);
    else if (k == "--duration-s") a.duration_s = std::atof(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  Load load(a);
  return load.run();
}
