// bench_public_load: the client side of bench/public (issue 13 item 6). One thread, epoll,
// non-blocking sockets. Every client binds its own loopback source address before it connects, so
// a per-client-IP cap sees providers and attackers apart, as it would on the internet: providers
// from 127.1.x.y, tricklers from 127.2.x.y, idle connections from 127.3.x.y (the server listens on
// 127.0.0.1; Linux routes all of 127.0.0.0/8 to the loopback device).
//
//   bench_public_load pool  --port P --path PATH --secret-file F [--control-port C --key-file K]
//                           [--clients 2000 --addrs 10 --requests 3 --hold-ms 2000 --probe-ms 50]
//     (a) every client connects at once, sends --requests deliveries one after another on its
//     keep-alive connection and keeps it open until --hold-ms after its first connect, as a
//     provider's connection pool does. A connection's first request is timed from the connect, so
//     a full accept queue shows in the latency. With --control-port, control probes as in mixed.
//   bench_public_load mixed --port P --path PATH --secret-file F --control-port C --key-file K
//                           [--connections 32 --addrs 4 --trickle 1000 --idle 1000
//                            --attack-addrs 100 --warm-s 3 --duration-s 10 --probe-ms 50]
//     (b) the attack connects first: --trickle connections send a partial request head and then one
//     header line (or byte, --trickle-unit byte) a second; --idle connections send nothing; both
//     reconnect whenever the server closes them. After --warm-s, --connections keep-alive
//     connections send deliveries back to back for --duration-s, while a probe opens a new
//     connection to the control listener every --probe-ms and times GET /api/v1/status (with the
//     API key). --trickle 0 --idle 0 is the run without attack.
//
// A delivery is a GitHub push: a JSON body of --body-bytes that carries its own delivery id, that
// id in X-GitHub-Delivery (unique per request, so dedup never answers from memory) and
// X-Hub-Signature-256 = HMAC-SHA256 of the raw body with the endpoint's secret, read from a file
// (never argv). Everything is bounded: each request, its connect included, gives up after
// --timeout-ms, and a run ends by --deadline-s whatever the server does. A request that got no
// answer (timeout, reset, refusal, cut off by the deadline) counts as infinitely slow in the
// percentiles, so a percentile that falls among them prints "unanswered" instead of hiding them.
// Prints a summary and one "RESULT key=value ..." line that bench/public parses.
#include <alumia/base/encoding.hpp>
#include <alumia/base/fs.hpp>
#include <alumia/crypto/crypto.hpp>

#include "public_load_parts.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using alumia::UniqueFd;
using bench::ms_text;
using bench::ms_value;
using bench::Parse;
using bench::Response;
using bench::take_response;
using bench::Tally;

double ms_between(Time from, Time to) { return std::chrono::duration<double, std::milli>(to - from).count(); }
Time plus_ms(Time t, double ms) {
  return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

// The k-th address of loopback range `net`: 127.net.(k / 250).(k % 250 + 1).
uint32_t loopback(unsigned net, unsigned k) { return (127u << 24) | (net << 16) | ((k / 250) << 8) | (k % 250 + 1); }

struct Options {
  std::string mode;
  int port = 0, control_port = 0;
  std::string path, host, secret_file, key_file;
  int body_bytes = 1024, timeout_ms = 10000;
  double deadline_s = 60;
  // pool
  int clients = 2000, addrs = 10, requests = 3, hold_ms = 2000;
  // mixed
  int connections = 32, trickle = 1000, idle = 1000, attack_addrs = 100, probe_ms = 50;
  double warm_s = 3, duration_s = 10;
  std::string trickle_unit = "line";
};

enum class Role { provider, trickler, idler, prober };

struct Conn {
  Role role;
  uint32_t source = 0;  // host order; 0: the kernel's choice
  uint16_t port = 0;
  UniqueFd fd{};
  bool connected = false;
  bool awaiting = false;  // a request is out and its answer not in
  bool fresh = false;     // the next request is the connection's first: timed from the connect
  bool holding = false;   // pool: every request done, the connection kept open until hold_until
  bool done = false;      // never opened again
  int left = 0;           // provider: requests still to send or settle
  std::string out{}, in{};
  std::size_t out_off = 0;
  Time opened{}, sent{}, hold_until{}, next_trickle{}, retry_at{};
  bool retry = false;
};

std::string read_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(std::string("cannot read the ") + what + " file " + path);
  std::stringstream s;
  s << f.rdbuf();
  std::string v = s.str();
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

class Load {
 public:
  explicit Load(Options o) : m_o(std::move(o)), m_ep(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!m_ep) throw std::runtime_error("epoll_create1 failed");
    m_secret = read_file(m_o.secret_file, "secret");
    if (!m_o.key_file.empty()) m_key = read_file(m_o.key_file, "API key");
    if (m_o.host.empty()) m_o.host = "127.0.0.1:" + std::to_string(m_o.port);
    std::random_device rd;
    m_run_id = rd();
  }

  int run() { return m_o.mode == "pool" ? run_pool() : run_mixed(); }

 private:
  Options m_o;
  UniqueFd m_ep;
  std::string m_secret, m_key;
  uint32_t m_run_id = 0;
  uint64_t m_sequence = 0;
  std::vector<std::unique_ptr<Conn>> m_conns;
  Tally m_deliveries, m_probes;
  Time m_stop_sending = Time::max();  // providers send no new request after it
  Time m_attack_until = Time::max();  // attackers reconnect until then
  long m_reconnects = 0, m_held_closed = 0, m_malformed = 0;
  long m_attack_connects = 0, m_attack_closed = 0, m_attack_connect_failures = 0, m_attack_open = 0,
       m_attack_open_max = 0;
  std::map<int, long> m_attack_replies;

  Conn& add(Role role, uint32_t source, uint16_t port) {
    m_conns.push_back(std::make_unique<Conn>(Conn{.role = role, .source = source, .port = port}));
    return *m_conns.back();
  }

  // A signed GitHub push whose body and X-GitHub-Delivery carry a delivery id unique to this run.
  std::string delivery() {
    char id[48];
    std::snprintf(id, sizeof id, "%08x-0000-4000-8000-%012llx", m_run_id,
                  static_cast<unsigned long long>(++m_sequence));
    std::string body = std::string(R"({"ref":"refs/heads/main","delivery":")") + id +
                       R"(","repository":{"full_name":"alumia/bench"},"padding":")";
    const std::size_t want = static_cast<std::size_t>(std::max(m_o.body_bytes, 0));
    body.append(want > body.size() + 2 ? want - body.size() - 2 : 0, 'x');
    body += "\"}";
    const std::string signature = "sha256=" + alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(m_secret, body));
    return "POST " + m_o.path + " HTTP/1.1\r\nHost: " + m_o.host +
           "\r\nUser-Agent: GitHub-Hookshot/bench\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"
           "X-GitHub-Delivery: " +
           id + "\r\nX-Hub-Signature-256: " + signature + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }
  std::string status_probe() const {
    return "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(m_o.control_port) +
           "\r\nAuthorization: Bearer " + m_key + "\r\nConnection: close\r\n\r\n";
  }

  void open(Conn& c, Time now) {
    c.fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) throw std::runtime_error(std::string("socket: ") + std::strerror(errno) + " (raise ulimit -n)");
    const int one = 1;
    ::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.source != 0) {
      // The port is chosen at connect, per destination, not at bind: thousands of clients fit.
      ::setsockopt(c.fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(c.source);
      if (::bind(c.fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
        throw std::runtime_error(std::string("bind to a loopback source address: ") + std::strerror(errno));
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(c.port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.connected = c.awaiting = c.retry = false;
    c.fresh = true;
    c.in.clear();
    c.out.clear();
    c.out_off = 0;
    c.opened = now;
    if (::connect(c.fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)
      return lost(c, now);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    ::epoll_ctl(m_ep.get(), EPOLL_CTL_ADD, c.fd.get(), &ev);
  }

  void shut(Conn& c) {
    if (c.connected && (c.role == Role::trickler || c.role == Role::idler)) m_attack_open--;
    c.fd = UniqueFd();  // closing removes it from the epoll set
    c.connected = c.awaiting = false;
  }
  void reopen_at(Conn& c, Time when) {
    c.retry = true;
    c.retry_at = when;
  }

  void push(Conn& c, std::string_view bytes, Time now, bool request) {
    c.out.append(bytes);
    if (request) {
      c.awaiting = true;
      c.sent = c.fresh ? c.opened : now;
      c.fresh = false;
    }
    flush(c, now);
  }
  void flush(Conn& c, Time now) {
    while (c.fd && c.connected && c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) return lost(c, now);
      c.out_off += static_cast<std::size_t>(n);
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
  }

  // A provider's request failed without an answer: count it and go on with the next one.
  void failed(Conn& c, Time now, bool timeout) {
    (timeout ? m_deliveries.timeouts : m_deliveries.errors)++;
    shut(c);
    c.left--;
    if (c.left > 0 && now < m_stop_sending) reopen_at(c, plus_ms(now, 20));
    else c.done = true;
  }

  // The server closed or reset the connection, refused it, or a send failed.
  void lost(Conn& c, Time now) {
    const bool was_connected = c.connected;
    switch (c.role) {
      case Role::provider:
        if (c.awaiting || !was_connected) return failed(c, now, false);
        shut(c);
        if (c.holding) {
          m_held_closed++;
          c.done = true;
        } else if (c.left > 0 && now < m_stop_sending) {
          m_reconnects++;
          reopen_at(c, now);
        } else {
          c.done = true;
        }
        return;
      case Role::prober:
        m_probes.errors++;
        shut(c);
        c.done = true;
        return;
      case Role::trickler:
      case Role::idler:
        (was_connected ? m_attack_closed : m_attack_connect_failures)++;
        shut(c);
        if (now < m_attack_until) reopen_at(c, plus_ms(now, 50));
        return;
    }
  }

  void on_connected(Conn& c, Time now) {
    c.connected = true;
    switch (c.role) {
      case Role::provider:
        return push(c, delivery(), now, true);
      case Role::prober:
        return push(c, status_probe(), now, true);
      case Role::trickler:
        m_attack_connects++;
        m_attack_open_max = std::max(m_attack_open_max, ++m_attack_open);
        c.next_trickle = plus_ms(now, 1000);
        return push(c, "POST " + m_o.path + " HTTP/1.1\r\nHost: " + m_o.host + "\r\n", now, false);
      case Role::idler:
        m_attack_connects++;
        m_attack_open_max = std::max(m_attack_open_max, ++m_attack_open);
        return;
    }
  }

  void on_response(Conn& c, const Response& r, Time now) {
    switch (c.role) {
      case Role::provider:
        if (!c.awaiting) return;  // an answer to nothing (a server's 408 on a kept-alive connection)
        c.awaiting = false;
        m_deliveries.answer(r.status, ms_between(c.sent, now), r.duplicate);
        c.left--;
        if (c.left > 0 && now < m_stop_sending) {
          if (!r.close) return push(c, delivery(), now, true);
          shut(c);
          m_reconnects++;
          return reopen_at(c, now);
        }
        if (m_o.mode == "pool" && !r.close && now < c.hold_until) {
          c.holding = true;
          return;
        }
        shut(c);
        c.done = true;
        return;
      case Role::prober:
        m_probes.answer(r.status, ms_between(c.sent, now), false);
        shut(c);
        c.done = true;
        return;
      case Role::trickler:
      case Role::idler:
        m_attack_replies[r.status]++;
        return;
    }
  }

  void on_event(Conn& c, uint32_t events, Time now) {
    if (!c.fd) return;
    if (!c.connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return lost(c, now);
      on_connected(c, now);
    }
    if (c.fd && (events & EPOLLOUT)) flush(c, now);
    if (!c.fd || !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    char buf[16384];
    bool closed = false;
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      closed = !(n < 0 && errno == EAGAIN);
      break;
    }
    Response r;
    for (Parse p; c.fd && (p = take_response(c.in, r)) != Parse::incomplete;) {
      if (p == Parse::malformed) {
        m_malformed++;
        return lost(c, now);
      }
      on_response(c, r, now);
    }
    if (closed && c.fd) lost(c, now);
  }

  // Deadlines, holds, trickled lines and reconnects.
  void tick(Time now) {
    for (auto& p : m_conns) {
      Conn& c = *p;
      if (c.fd && ((c.awaiting && ms_between(c.sent, now) > m_o.timeout_ms) ||
                   (!c.connected && ms_between(c.opened, now) > m_o.timeout_ms))) {
        if (c.role == Role::provider) {
          failed(c, now, true);
        } else if (c.role == Role::prober) {
          m_probes.timeouts++;
          shut(c);
          c.done = true;
        } else {  // an attacker's connect that never completed
          m_attack_connect_failures++;
          shut(c);
          if (now < m_attack_until) reopen_at(c, now);
        }
        continue;
      }
      if (c.holding && c.fd && now >= c.hold_until) {
        shut(c);
        c.holding = false;
        c.done = true;
      }
      if (c.role == Role::trickler && c.fd && c.connected && now >= c.next_trickle) {
        push(c, m_o.trickle_unit == "byte" ? std::string("X") : "X-Trickle-" + std::to_string(m_sequence++) + ": 1\r\n",
             now, false);
        c.next_trickle = plus_ms(now, 1000);
      }
      if (!c.fd && c.retry && !c.done && now >= c.retry_at) {
        if (c.role == Role::provider && now >= m_stop_sending) c.done = true;  // its window is over
        else open(c, now);
      }
    }
  }

  // Runs the loop until `finished` says so or the deadline passes.
  template <typename Finished, typename Each>
  void loop(Time deadline, Finished finished, Each each) {
    Time last_tick{};
    epoll_event events[1024];
    for (;;) {
      const int n = ::epoll_wait(m_ep.get(), events, 1024, 2);
      const Time now = Clock::now();
      for (int i = 0; i < n; ++i) on_event(*static_cast<Conn*>(events[i].data.ptr), events[i].events, now);
      each(now);
      if (ms_between(last_tick, now) >= 10) {
        tick(now);
        last_tick = now;
      }
      if (finished(now) || now >= deadline) return;
    }
  }

  // Whatever is still out when a run ends is unanswered: in flight counts as a timeout, never sent as unsent.
  void settle(Time now) {
    for (auto& p : m_conns) {
      Conn& c = *p;
      if (c.role == Role::provider && !c.done) {
        if (c.awaiting) {
          m_deliveries.timeouts++;
          c.left--;
        }
        if (m_o.mode == "pool") m_deliveries.unsent += std::max(c.left, 0);
      }
      if (c.role == Role::prober && !c.done && c.fd) m_probes.timeouts++;
      c.retry = false;
      c.done = true;
      if (c.fd) shut(c);
    }
    (void)now;
  }

  int run_pool() {
    const Time t0 = Clock::now();
    for (int i = 0; i < m_o.clients; ++i) {
      Conn& c = add(Role::provider, loopback(1, static_cast<unsigned>(i % std::max(m_o.addrs, 1))),
                    static_cast<uint16_t>(m_o.port));
      c.left = m_o.requests;
      c.hold_until = plus_ms(t0, m_o.hold_ms);
    }
    for (auto& c : m_conns) open(*c, t0);
    const Time deadline = plus_ms(t0, m_o.deadline_s * 1000);
    bool providers_done = false;
    Time next_probe = t0;
    auto each = [&](Time now) {
      providers_done =
          std::all_of(m_conns.begin(), m_conns.end(), [](auto& c) { return c->role != Role::provider || c->done; });
      probe(now, next_probe, providers_done ? now : Time::max());
    };
    auto finished = [&](Time) { return providers_done && !probes_out(); };
    loop(deadline, finished, each);
    const Time end = Clock::now();
    const bool cut = end >= deadline;
    settle(end);
    Tally& d = m_deliveries;
    const long total = static_cast<long>(m_o.clients) * m_o.requests;
    std::printf("pool: %d clients from %d addresses (127.1.x.y), %d deliveries each, held %d ms: %.1f s%s\n",
                m_o.clients, m_o.addrs, m_o.requests, m_o.hold_ms, ms_between(t0, end) / 1000,
                cut ? " (deadline reached)" : "");
    std::printf("  answered %ld of %ld (2xx %ld; codes %s; duplicates %ld), errors %ld, timeouts %ld, unsent %ld\n",
                d.answered, total, d.ok, d.codes_text().c_str(), d.duplicates, d.errors, d.timeouts, d.unsent);
    const double p50 = d.percentile(0.5), p90 = d.percentile(0.9), p99 = d.percentile(0.99), mx = d.percentile(1);
    std::printf(
        "  latency ms: p50 %s p90 %s p99 %s max %s; reconnects %ld; held connections closed by the server %ld\n",
        ms_text(p50).c_str(), ms_text(p90).c_str(), ms_text(p99).c_str(), ms_text(mx).c_str(), m_reconnects,
        m_held_closed);
    std::printf(
        "RESULT mode=pool total=%ld answered=%ld ok=%ld duplicates=%ld codes=%s errors=%ld timeouts=%ld unsent=%ld "
        "malformed=%ld p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s reconnects=%ld held_closed=%ld seconds=%.2f "
        "deadline_hit=%d\n",
        total, d.answered, d.ok, d.duplicates, d.codes_text().c_str(), d.errors, d.timeouts, d.unsent, m_malformed,
        ms_value(p50).c_str(), ms_value(p90).c_str(), ms_value(p99).c_str(), ms_value(mx).c_str(), m_reconnects,
        m_held_closed, ms_between(t0, end) / 1000, cut ? 1 : 0);
    print_probes("RESULT mode=pool-probes");
    return 0;
  }

  // A control probe every --probe-ms until `until` (when a control port is given).
  void probe(Time now, Time& next, Time until) {
    for (; m_o.probe_ms > 0 && m_o.control_port > 0 && now >= next && next < until; next = plus_ms(next, m_o.probe_ms))
      open(add(Role::prober, 0, static_cast<uint16_t>(m_o.control_port)), now);
  }
  bool probes_out() const {
    return std::any_of(m_conns.begin(), m_conns.end(), [](auto& c) { return c->role == Role::prober && c->fd; });
  }
  void print_probes(const char* result_prefix) {
    Tally& p = m_probes;
    const double p50 = p.percentile(0.5), p99 = p.percentile(0.99), mx = p.percentile(1);
    if (m_o.control_port > 0)
      std::printf(
          "  control GET /api/v1/status: %ld probes (2xx %ld, codes %s), errors %ld, timeouts %ld; ms p50 %s p99 %s "
          "max %s\n",
          p.total(), p.ok, p.codes_text().c_str(), p.errors, p.timeouts, ms_text(p50).c_str(), ms_text(p99).c_str(),
          ms_text(mx).c_str());
    std::printf(
        "%s probes=%ld probe_ok=%ld probe_errors=%ld probe_timeouts=%ld probe_p50_ms=%s probe_p99_ms=%s "
        "probe_max_ms=%s\n",
        result_prefix, p.total(), p.ok, p.errors, p.timeouts, ms_value(p50).c_str(), ms_value(p99).c_str(),
        ms_value(mx).c_str());
  }

  int run_mixed() {
    const Time t0 = Clock::now();
    const bool attack = m_o.trickle + m_o.idle > 0;
    const Time start = plus_ms(t0, attack ? m_o.warm_s * 1000 : 0);
    m_stop_sending = plus_ms(start, m_o.duration_s * 1000);
    const unsigned spread = static_cast<unsigned>(std::max(m_o.attack_addrs, 1));
    const auto port = static_cast<uint16_t>(m_o.port);
    for (int i = 0; i < m_o.trickle; ++i) add(Role::trickler, loopback(2, static_cast<unsigned>(i) % spread), port);
    for (int i = 0; i < m_o.idle; ++i) add(Role::idler, loopback(3, static_cast<unsigned>(i) % spread), port);
    for (auto& c : m_conns) open(*c, t0);
    std::vector<Conn*> providers;
    for (int i = 0; i < m_o.connections; ++i) {
      Conn& c = add(Role::provider, loopback(1, static_cast<unsigned>(i % std::max(m_o.addrs, 1))), port);
      c.left = 1 << 30;
      providers.push_back(&c);
    }
    bool started = false;
    Time next_probe = start;
    const Time deadline = plus_ms(m_stop_sending, m_o.timeout_ms + 1000);
    auto each = [&](Time now) {
      if (!started && now >= start) {
        started = true;
        for (Conn* c : providers) open(*c, now);
      }
      if (started) probe(now, next_probe, m_stop_sending);
    };
    auto finished = [&](Time now) {
      if (now < m_stop_sending) return false;
      return std::none_of(m_conns.begin(), m_conns.end(), [](auto& c) {
        return c->fd && c->awaiting && (c->role == Role::provider || c->role == Role::prober);
      });
    };
    loop(deadline, finished, each);
    const Time end = Clock::now();
    m_attack_until = end;
    const long attack_open_end = m_attack_open;
    settle(end);
    Tally &d = m_deliveries, &p = m_probes;
    const double secs = m_o.duration_s;
    const double dp50 = d.percentile(0.5), dp90 = d.percentile(0.9), dp99 = d.percentile(0.99), dmax = d.percentile(1);
    const double pp50 = p.percentile(0.5), pp99 = p.percentile(0.99), pmax = p.percentile(1);
    std::string replies;
    for (const auto& [code, n] : m_attack_replies)
      replies += (replies.empty() ? "" : ",") + std::to_string(code) + ":" + std::to_string(n);
    if (replies.empty()) replies = "-";
    std::printf(
        "mixed: %d delivery connections (127.1.x.y, %d addresses) for %.0f s; attack %d trickling (%s a second)"
        " + %d idle over %d addresses each (127.2.x.y, 127.3.x.y), %.0f s ahead\n",
        m_o.connections, m_o.addrs, secs, m_o.trickle, m_o.trickle_unit.c_str(), m_o.idle, m_o.attack_addrs,
        attack ? m_o.warm_s : 0.0);
    std::printf("  deliveries %ld (%.0f/s; 2xx %ld; codes %s; duplicates %ld), errors %ld, timeouts %ld\n", d.total(),
                static_cast<double>(d.answered) / secs, d.ok, d.codes_text().c_str(), d.duplicates, d.errors,
                d.timeouts);
    std::printf("  delivery latency ms: p50 %s p90 %s p99 %s max %s\n", ms_text(dp50).c_str(), ms_text(dp90).c_str(),
                ms_text(dp99).c_str(), ms_text(dmax).c_str());
    if (m_o.control_port > 0)
      std::printf(
          "  control GET /api/v1/status: %ld probes (2xx %ld, codes %s), errors %ld, timeouts %ld; ms p50 %s p99 %s "
          "max %s\n",
          p.total(), p.ok, p.codes_text().c_str(), p.errors, p.timeouts, ms_text(pp50).c_str(), ms_text(pp99).c_str(),
          ms_text(pmax).c_str());
    if (attack)
      std::printf(
          "  attack: %ld connects, %ld closed by the server, %ld connect failures, replies %s, open at the end %ld"
          " (most at once %ld)\n",
          m_attack_connects, m_attack_closed, m_attack_connect_failures, replies.c_str(), attack_open_end,
          m_attack_open_max);
    std::printf(
        "RESULT mode=mixed requests=%ld answered=%ld ok=%ld duplicates=%ld codes=%s errors=%ld timeouts=%ld "
        "malformed=%ld rps=%.0f p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s probes=%ld probe_ok=%ld probe_errors=%ld "
        "probe_timeouts=%ld probe_p50_ms=%s probe_p99_ms=%s probe_max_ms=%s attack_connects=%ld attack_closed=%ld "
        "attack_connect_failures=%ld attack_replies=%s attack_open_end=%ld attack_open_max=%ld deadline_hit=%d\n",
        d.total(), d.answered, d.ok, d.duplicates, d.codes_text().c_str(), d.errors, d.timeouts, m_malformed,
        static_cast<double>(d.answered) / secs, ms_value(dp50).c_str(), ms_value(dp90).c_str(), ms_value(dp99).c_str(),
        ms_value(dmax).c_str(), p.total(), p.ok, p.errors, p.timeouts, ms_value(pp50).c_str(), ms_value(pp99).c_str(),
        ms_value(pmax).c_str(), m_attack_connects, m_attack_closed, m_attack_connect_failures, replies.c_str(),
        attack_open_end, m_attack_open_max, end >= deadline ? 1 : 0);
    return 0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_public_load: providers and attackers against the public listener (bench/public)"};
  app.require_subcommand(1);
  Options o;
  for (auto* sub : {app.add_subcommand("pool", "(a) many keep-alive provider clients, each holding its connection"),
                    app.add_subcommand("mixed", "(b) deliveries while connections trickle and idle; control probes")}) {
    sub->add_option("--port", o.port, "the public listener's port on 127.0.0.1")->required();
    sub->add_option("--path", o.path, "the receiver path, /api/v1/connectors/webhooks/github/ID")->required();
    sub->add_option("--host", o.host, "the Host header (default 127.0.0.1:PORT)");
    sub->add_option("--secret-file", o.secret_file, "file holding the endpoint's webhook secret")->required();
    sub->add_option("--body-bytes", o.body_bytes, "size of each delivery's JSON body")->capture_default_str();
    sub->add_option("--timeout-ms", o.timeout_ms, "give up on a request (its connect included) after")
        ->capture_default_str();
    sub->add_option("--deadline-s", o.deadline_s, "pool: end the run by then whatever happens")->capture_default_str();
    sub->add_option("--addrs", o.addrs, "provider source addresses, 127.1.x.y")->capture_default_str();
    sub->add_option("--control-port", o.control_port, "the control listener's port (0: no probes)");
    sub->add_option("--key-file", o.key_file, "file holding the daemon's API key, for GET /api/v1/status");
    sub->add_option("--probe-ms", o.probe_ms, "a control probe every")->capture_default_str();
  }
  auto* pool = app.get_subcommand("pool");
  pool->add_option("--clients", o.clients)->capture_default_str();
  pool->add_option("--requests", o.requests, "deliveries per client")->capture_default_str();
  pool->add_option("--hold-ms", o.hold_ms, "keep each connection open until this long after the start")
      ->capture_default_str();
  auto* mixed = app.get_subcommand("mixed");
  mixed->add_option("--connections", o.connections, "delivery connections")->capture_default_str();
  mixed->add_option("--trickle", o.trickle, "trickling connections (127.2.x.y)")->capture_default_str();
  mixed->add_option("--trickle-unit", o.trickle_unit, "line or byte a second")
      ->check(CLI::IsMember({"line", "byte"}))
      ->capture_default_str();
  mixed->add_option("--idle", o.idle, "idle connections (127.3.x.y)")->capture_default_str();
  mixed->add_option("--attack-addrs", o.attack_addrs, "source addresses per kind of attacker")->capture_default_str();
  mixed->add_option("--warm-s", o.warm_s, "the attack connects this long before the deliveries start")
      ->capture_default_str();
  mixed->add_option("--duration-s", o.duration_s, "seconds of deliveries")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.mode = pool->parsed() ? "pool" : "mixed";
  ::signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  try {
    Load load(std::move(o));
    return load.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_public_load: error: %s\n", e.what());
    return 2;
  }
}
