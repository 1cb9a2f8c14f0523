// A listener on GNU libmicrohttpd (server.hpp). The life of one request:
//
//   poll thread   the URI callback opens an Exchange with the raw target; the first access call (head
//                 complete, no body byte read) judges the head (http_head.hpp), Host, Origin, the client
//                 address (trusted proxies), match_route and the route's body cap. A route whose
//                 admission reads the store (the webhook receiver's endpoint lookup and rate limit) is
//                 admitted on a worker, the connection suspended meanwhile. Body chunks are appended.
//   worker        dispatch() (auth, handler, store), the connection suspended; then it resumes it.
//                 A route with handle_now (the receiver) is dispatched on the poll thread instead when
//                 it can be without blocking (dispatch_now): a new delivery's answer is then set, and
//                 the connection resumed, by the intake log's flusher once the record is on disk.
//   poll thread   the next access call queues the answer.
//
// Every refusal before the body is read closes the connection (Connection: close; MHD closes after
// the answer and never reads the body). A sweeper thread per listener closes with 408 a connection
// whose head is not complete within the header timeout, or whose body averages less than the floor
// rate after it (MHD has no header deadline: its inactivity timeout never fires on a trickle, and it
// has no call to close a connection from outside, so the sweeper writes the answer and shuts the
// socket down; MHD sees the end of the stream and closes it on its own thread).
#include "server.hpp"

#include "http_head.hpp"
#include "mhd_loop.hpp"
#include "routes.hpp"
#include "work_pool.hpp"

#include <alumia/base/strings.hpp>
#include <alumia/net/client_address.hpp>
#include <alumia/net/host_port.hpp>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace alumia::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// MHD's memory pool per connection: the head must fit in it (heads up to ~7 KiB; more and MHD answers
// 431 itself), and the body is read through what is left. ~13 KiB a connection in all: 2,000
// connections add ~40 MB to the daemon, measured (issue 13 item 5: <= 64 MB under that load). 16 KiB
// took 8 MB more for heads no provider sends.
constexpr std::size_t k_connection_memory = 12 * 1024;
constexpr int k_listen_backlog = 4096;
constexpr auto k_receipt_margin = std::chrono::milliseconds(25);

// One open connection (MHD's socket context), from NOTIFY_CONNECTION started to closed.
struct Conn {
  // idle: keep-alive after an answer, until the next request's first byte (then awaiting_head, its
  // header deadline counting from that byte); MHD's idle timeout closes it before that.
  enum class Phase { idle, awaiting_head, body, busy };
  int fd = -1;
  std::string peer;  // canonical address
  bool via_proxy = false;
  // Under Impl::mutex (the sweeper reads them):
  Phase phase = Phase::awaiting_head;
  Clock::time_point since;  // the phase's start
  uint64_t body_bytes = 0;
  bool shot = false;
};

// One request (MHD's con_cls), from the URI callback to NOTIFY_COMPLETED.
struct Exchange {
  enum class Step { head, admitting, body, working, answering };
  Step step = Step::head;
  std::string target;
  http::Request request;
  RouteMatch match;
  std::optional<http::Response> answer;
  std::size_t length = 0;  // Content-Length
  bool close = false;
  std::size_t budgeted = 0;      // this request's share of Impl::buffered (its Content-Length)
  std::string in_flight_client;  // counted in Impl::in_flight (requests through a trusted proxy)
};

std::string address_text(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {};
  if (sa == nullptr) return {};
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  const std::string canonical = net::canonical_address(text);
  return canonical.empty() ? std::string(text) : canonical;
}

bool host_allowed(const std::vector<std::string>& allowed, std::string_view host) {
  const std::string h = to_lower(host);
  return std::find(allowed.begin(), allowed.end(), h) != allowed.end();
}

// The bytes of a complete answer written by the sweeper, which holds no MHD request.
std::string canned_answer(const http::Response& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " Request Timeout\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
  return out + r.body;
}

// Line ends (issue 13 item 2): a strict proxy ends every head line with CRLF and has no obs-fold (a line
// that begins with a space or tab continuing the previous value), so either can make it and us read the
// head differently. MHD 0.9.75 accepts both (bare LF: "TODO: Add MHD option to disallow"; a folded line is
// joined into the previous header) and has no option to refuse them (MHD_OPTION_STRICT_FOR_CLIENT covers
// spaces in the target and before a colon, and Host). What remains visible is its in-place parse: it
// overwrites each line's CR and LF with NULs and hands out pointers into that buffer, so a header value
// of n bytes that ended in CRLF is followed by two NULs, and one that ended in a bare LF by one NUL and the
// next line (never a NUL unless that line is the empty one). So, for each header (name k, value v):
//   - k[-2], k[-1] must both be NUL: the line before it (the request line, or the previous header)
//     ended in CRLF;
//   - v[n+1] must be NUL (else the line ended in a bare LF), and v[n+2] neither space nor tab (else the
//     next line was folded into it);
//   - v must hold no CR (a bare CR inside a line).
// The end of the last header line and the empty line cannot be told apart from a bare LF this way. The
// check depends on that layout, so it runs only on the MHD it was written and tested against
// (tests/functional/test_http_listeners.cpp); later versions refuse both themselves.
bool mhd_parses_in_place() {
  static const bool known = std::string_view(MHD_get_version()) == "0.9.75";
  return known;
}

bool line_ends_strict(const char* k, const char* v) {
  if (k == nullptr || v == nullptr) return true;
  if (k[-1] != '\0' || k[-2] != '\0') return false;
  const std::size_t n = std::strlen(v);
  if (v[n + 1] != '\0' || v[n + 2] == ' ' || v[n + 2] == '\t') return false;
  return std::memchr(v, '\r', n) == nullptr;
}

__attribute__((format(printf, 2, 0))) void log_from_mhd(void*, const char* format, va_list ap) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, ap);
  std::string_view text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  spdlog::debug("http: {}", text);
}

}  // namespace

struct Listener::Impl {
  http::ListenerKind kind;
  DaemonContext& ctx;
  ListenerLimits limits;
  net::TrustedProxies trusted;
  const std::vector<std::string>& hosts;
  WorkPool pool;
  std::string timeout_answer;  // canned_answer of the 408
  MHD_Daemon* mhd = nullptr;
  MhdLoop loop;  // the poll thread (mhd_loop.hpp); every resume goes through loop.resume

  // Poll thread only: connections per address (accept policy and notify), requests in flight per
  // forwarded client (first call and completion).
  std::unordered_map<std::string, int> per_ip;
  std::unordered_map<std::string, int> in_flight;
  int open_connections = 0;
  // Poll thread only: the declared lengths of the bodies being read or handled. A body is reserved
  // before its first byte is read, so that the connection caps times the body caps (3,000 x 256 KiB
  // and more) can never all be in memory at once.
  int64_t buffered = 0;

  std::mutex mutex;  // conns and each Conn's phase fields; the sweeper's wake-up
  std::unordered_set<Conn*> conns;
  std::condition_variable sweeper_cv;
  std::vector<std::pair<Clock::time_point, MHD_Connection*>> held;  // suspended answers and when they are due
  bool stopping = false;
  std::thread sweeper;

  Impl(http::ListenerKind k, DaemonContext& c, ListenerLimits l, net::TrustedProxies t)
      : kind(k),
        ctx(c),
        limits(std::move(l)),
        trusted(std::move(t)),
        hosts(k == http::ListenerKind::control ? c.control_hosts : c.public_hosts),
        pool(limits.workers, static_cast<std::size_t>(limits.max_connections)),
        timeout_answer(canned_answer(error_response(
            Error{ErrorCode::request_timeout,
                  "the request was not received in time (headers within the header timeout, the body at the "
                  "minimum rate); the connection is closed",
                  0}))) {}

  // ---- MHD callbacks (static trampolines below) ----

  MHD_Result accept_policy(const sockaddr* addr) {
    if (open_connections >= limits.max_connections) return MHD_NO;
    const std::string peer = address_text(addr);
    if (trusted.contains(peer)) return MHD_YES;  // carries many clients: only the total cap
    auto it = per_ip.find(peer);
    return it != per_ip.end() && it->second >= limits.max_connections_per_ip ? MHD_NO : MHD_YES;
  }

  void connection_started(MHD_Connection* c, void** socket_context) {
    auto* conn = new Conn;
    const MHD_ConnectionInfo* fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const MHD_ConnectionInfo* addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    conn->fd = fd ? fd->connect_fd : -1;
    conn->peer = addr ? address_text(addr->client_addr) : std::string();
    conn->via_proxy = trusted.contains(conn->peer);
    conn->since = Clock::now();
    *socket_context = conn;
    ++open_connections;
    if (!conn->via_proxy) ++per_ip[conn->peer];
    std::lock_guard lock(mutex);
    conns.insert(conn);
  }

  void connection_closed(void** socket_context) {
    auto* conn = static_cast<Conn*>(*socket_context);
    if (conn == nullptr) return;
    --open_connections;
    if (!conn->via_proxy)
      if (auto it = per_ip.find(conn->peer); it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
    {
      std::lock_guard lock(mutex);
      conns.erase(conn);
    }
    delete conn;
    *socket_context = nullptr;
  }

  static Conn* conn_of(MHD_Connection* c) {
    const MHD_ConnectionInfo* i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? static_cast<Conn*>(i->socket_context) : nullptr;
  }

  void set_phase(Conn* conn, Conn::Phase phase) {
    if (conn == nullptr) return;
    std::lock_guard lock(mutex);
    conn->phase = phase;
    conn->since = Clock::now();
    conn->body_bytes = 0;
  }

  void request_completed(MHD_Connection* c, void** con_cls) {
    auto* ex = static_cast<Exchange*>(*con_cls);
    if (ex != nullptr) buffered -= static_cast<int64_t>(ex->budgeted);
    if (ex != nullptr && !ex->in_flight_client.empty())
      if (auto it = in_flight.find(ex->in_flight_client); it != in_flight.end() && --it->second <= 0)
        in_flight.erase(it);
    delete ex;
    *con_cls = nullptr;
    set_phase(conn_of(c), Conn::Phase::idle);
  }

  // The URI callback: the request line is complete, so the next request has begun (if the sweeper
  // has not seen its first byte yet, it counts from now).
  void request_begun(MHD_Connection* c) {
    Conn* conn = conn_of(c);
    if (conn == nullptr) return;
    std::lock_guard lock(mutex);
    if (conn->phase != Conn::Phase::idle) return;
    conn->phase = Conn::Phase::awaiting_head;
    conn->since = Clock::now();
  }

  // Queues `r` on the poll thread. `close`: Connection: close (after any refusal before the body is
  // read, MHD then closes without reading it).
  static MHD_Result queue(MHD_Connection* c, const http::Response& r, bool close) {
    const bool empty = r.status == 204 || (r.body.empty() && r.status == 200 && r.content_type.empty());
    MHD_Response* res = MHD_create_response_from_buffer(empty ? 0 : r.body.size(), const_cast<char*>(r.body.data()),
                                                        MHD_RESPMEM_MUST_COPY);
    if (res == nullptr) return MHD_NO;
    if (!empty)
      MHD_add_response_header(res, "Content-Type", r.content_type.empty() ? "text/plain" : r.content_type.c_str());
    for (const auto& [k, v] : r.headers) MHD_add_response_header(res, k.c_str(), v.c_str());
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    if (close) MHD_add_response_header(res, "Connection", "close");
    const MHD_Result ret = MHD_queue_response(c, static_cast<unsigned>(r.status), res);
    MHD_destroy_response(res);
    return ret;
  }

  static MHD_Result refuse(MHD_Connection* c, Exchange& ex, const Error& e) {
    ex.step = Exchange::Step::answering;
    return queue(c, error_response(e), true);
  }

  MHD_Result on_request(MHD_Connection* c, const char* method, const char* upload, size_t* upload_size,
                        void** con_cls) {
    auto* ex = static_cast<Exchange*>(*con_cls);
    if (ex == nullptr) {  // the URI callback opens every exchange; not expected
      ex = new Exchange;
      *con_cls = ex;
    }
    switch (ex->step) {
      case Exchange::Step::head:
        return on_head(c, *ex, method);
      case Exchange::Step::admitting:  // resumed after admission on a worker
        if (ex->answer) {
          ex->step = Exchange::Step::answering;
          return queue(c, *ex->answer, true);
        }
        if (!reserve_body(*ex)) return refuse(c, *ex, over_budget_error());
        ex->step = Exchange::Step::body;
        [[fallthrough]];
      case Exchange::Step::body:
        if (*upload_size != 0) {
          ex->request.body.append(upload, *upload_size);
          if (Conn* conn = conn_of(c)) {
            std::lock_guard lock(mutex);
            conn->body_bytes += *upload_size;
          }
          *upload_size = 0;
          return MHD_YES;
        }
        if (ex->request.body.size() < ex->length) return MHD_YES;  // more to come
        return start_work(c, *ex);
      case Exchange::Step::working:
        if (!ex->answer) return MHD_YES;  // not expected: a worker resumes only once it has answered
        ex->step = Exchange::Step::answering;
        return queue(c, *ex->answer, ex->close);
      case Exchange::Step::answering:
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_NO;
  }

  // The first call: the head is complete and no body byte has been read.
  MHD_Result on_head(MHD_Connection* c, Exchange& ex, const char* method) {
    Conn* conn = conn_of(c);
    set_phase(conn, Conn::Phase::body);
    http::Request& r = ex.request;
    r.method = method;
    r.listener = kind;
    r.target = std::move(ex.target);
    struct Parsed {
      http::Headers& headers;
      bool strict_lines = true;
    } parsed{r.headers};
    MHD_get_connection_values(
        c, MHD_HEADER_KIND,
        [](void* cls, MHD_ValueKind, const char* k, const char* v) {
          auto& p = *static_cast<Parsed*>(cls);
          p.headers.emplace_back(k, v ? v : "");
          if (mhd_parses_in_place() && !line_ends_strict(k, v)) p.strict_lines = false;
          return MHD_YES;
        },
        &parsed);
    // MHD_OPTION_STRICT_FOR_CLIENT is 0 (see start()): a space in the target is refused here, with the
    // envelope, and so is any other control byte.
    if (std::any_of(r.target.begin(), r.target.end(),
                    [](char ch) { return static_cast<unsigned char>(ch) <= ' ' || ch == '\x7f'; }))
      return refuse(c, ex,
                    Error{ErrorCode::bad_request,
                          "the request target holds a space or a control character; percent-encode it", 0});
    if (!parsed.strict_lines)
      return refuse(c, ex,
                    Error{ErrorCode::bad_request,
                          "every line of the request head must end in CRLF, and no header may continue on the next "
                          "line (obs-fold); send each header on one line",
                          0});
    auto verdict = judge_head(r.method, r.headers);
    if (!verdict) return refuse(c, ex, verdict.error());
    ex.length = verdict->content_length;
    for (auto& [k, v] : r.headers) k = to_lower(k);

    const auto host = r.header("host");
    if (!host || !host_allowed(hosts, *host))
      return refuse(
          c, ex,
          Error{ErrorCode::forbidden, "Host header not allowed: this listener answers only to its own address", 0});
    if (const auto origin = r.header("origin")) {
      bool same = false;
      for (const auto& h : hosts) same = same || *origin == "http://" + h || *origin == "https://" + h;
      if (!same) return refuse(c, ex, Error{ErrorCode::forbidden, "cross-origin requests are not allowed", 0});
    }

    // The client: the peer, or behind a trusted proxy the address it forwards, each limited.
    const std::string peer = conn ? conn->peer : std::string();
    if (conn != nullptr && conn->via_proxy) {
      std::vector<std::string> forwarded;
      for (const auto& [k, v] : r.headers)
        if (k == "x-forwarded-for") forwarded.push_back(v);
      r.remote_addr = net::client_address(peer, forwarded, trusted);
      int& n = in_flight[r.remote_addr];
      if (n >= limits.max_connections_per_ip) {
        if (n == 0) in_flight.erase(r.remote_addr);
        return refuse(c, ex,
                      Error{ErrorCode::service_unavailable,
                            "too many requests in flight from this client address; retry later", 1});
      }
      ++n;
      ex.in_flight_client = r.remote_addr;
    } else {
      r.remote_addr = peer;
    }

    // The path (decoded) and the query (decoded, in order), from the raw target.
    const std::string_view target = r.target;
    const auto q = target.find('?');
    r.path = http::url_decode(target.substr(0, q), false);
    if (q != std::string_view::npos)
      for (auto& [k, v] : http::form_decode(target.substr(q + 1))) r.query.emplace(std::move(k), std::move(v));

    ex.match = match_route(r.method, r.path, kind);
    // The body rule here when it needs no store read (a cached endpoint: nearly every delivery).
    const std::optional<Status> admitted = admit_body_now(ctx, ex.match, ex.length);
    if (!admitted) {
      // Admission would read the store (the receiver's endpoint, not cached yet): on a worker, the
      // connection suspended, still before the body is read.
      ex.step = Exchange::Step::admitting;
      set_phase(conn, Conn::Phase::busy);
      MHD_suspend_connection(c);
      Exchange* exp = &ex;
      if (!pool.push([this, c, exp, conn] {
            try {
              if (auto st = admit_body(ctx, exp->match, exp->length); !st) exp->answer = error_response(st.error());
            } catch (const std::exception& e) {
              spdlog::error("internal error admitting {} {}: {}", exp->request.method, exp->request.path, e.what());
              exp->answer = error_response(Error{ErrorCode::internal, "internal error (see the daemon log)", 0});
            }
            set_phase(conn, Conn::Phase::body);
            loop.resume(c);
          })) {
        loop.resume(c);
        set_phase(conn, Conn::Phase::body);
        return refuse(c, ex, busy_error());
      }
      return MHD_YES;
    }
    if (!*admitted) return refuse(c, ex, admitted->error());
    if (!reserve_body(ex)) return refuse(c, ex, over_budget_error());
    ex.step = Exchange::Step::body;
    // Grown as the body comes, not reserved for what the head declares: a connection that claims 25 MiB
    // and sends nothing holds nothing.
    r.body.reserve(std::min<std::size_t>(ex.length, 64 * 1024));
    return MHD_YES;
  }

  // Requests whose answer another thread will set (dispatch_now): stop() waits for them, since MHD
  // must not stop with a connection suspended, and the answer's callback holds the connection.
  std::mutex handed_mutex;
  std::condition_variable handed_cv;
  int handed = 0;
  bool handing_closed = false;

  bool hand_on() {
    std::lock_guard lock(handed_mutex);
    if (handing_closed) return false;
    ++handed;
    return true;
  }
  void handed_back() {
    std::lock_guard lock(handed_mutex);  // notified under the lock: stop() cannot return before we let go
    if (--handed == 0) handed_cv.notify_all();
  }
  void close_handing() {
    std::unique_lock lock(handed_mutex);
    handing_closed = true;
    handed_cv.wait(lock, [&] { return handed == 0; });
  }

  // Takes the request's declared body length from the listener's budget; false when it does not fit.
  bool reserve_body(Exchange& ex) {
    const auto length = static_cast<int64_t>(ex.length);
    if (length > limits.body_budget - buffered) return false;
    buffered += length;
    ex.budgeted = ex.length;
    return true;
  }

  static Error over_budget_error() {
    return Error{ErrorCode::service_unavailable,
                 "the daemon is reading too many request bodies at once (http-body-budget); retry later", 1};
  }

  static Error busy_error() {
    return Error{ErrorCode::service_unavailable, "the daemon is busy (its work queue is full); retry later", 1};
  }

  // The body is complete: dispatched here when the route can answer without blocking (a delivery to
  // a cached endpoint that memory dedups: verified here, its answer sent by the intake log's flusher
  // once the record is durable, through resume), else on a worker; the connection suspended meanwhile.
  MHD_Result start_work(MHD_Connection* c, Exchange& ex) {
    Conn* conn = conn_of(c);
    ex.step = Exchange::Step::working;
    set_phase(conn, Conn::Phase::busy);
    MHD_suspend_connection(c);
    Exchange* exp = &ex;
    if (hand_on()) {
      if (dispatch_now(ctx, ex.request, ex.match, [this, c, exp](http::Response r) {
            exp->answer = std::move(r);
            loop.resume(c);
            handed_back();
          }))
        return MHD_YES;
      handed_back();
    }
    if (!pool.push([this, c, exp] {
          try {
            exp->answer = dispatch(ctx, exp->request, std::move(exp->match));
          } catch (const std::exception& e) {
            spdlog::error("internal error on {} {}: {}", exp->request.method, exp->request.path, e.what());
            exp->answer = error_response(Error{ErrorCode::internal, "internal error (see the daemon log)", 0});
          }
          if (exp->answer->hold.count() > 0) hold_then_resume(c, Clock::now() + exp->answer->hold);
          else loop.resume(c);
        })) {
      loop.resume(c);
      ex.answer = error_response(busy_error());
    }
    return MHD_YES;
  }

  // An answer to hold (http::Response::hold): the connection stays suspended, holding no worker,
  // until the sweeper resumes it.
  void hold_then_resume(MHD_Connection* c, Clock::time_point due) {
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        held.emplace_back(due, c);
        sweeper_cv.notify_all();
        return;
      }
    }
    loop.resume(c);
  }

  // Under mutex: takes the held answers that are due (all of them when stopping) into `due`, for the
  // caller to resume once it has let go of the mutex (MHD takes its own locks in resume); returns the
  // earliest one still held.
  std::optional<Clock::time_point> take_due(Clock::time_point now, std::vector<MHD_Connection*>& due) {
    std::optional<Clock::time_point> next;
    std::erase_if(held, [&](const auto& h) {
      if (stopping || h.first <= now) {
        due.push_back(h.second);
        return true;
      }
      if (!next || h.first < *next) next = h.first;
      return false;
    });
    return next;
  }

  // ---- the sweeper: header deadline and body floor ----

  // An idle keep-alive connection whose next request has sent bytes (MHD reads them at once, so the
  // kernel's last receipt, TCP_INFO, is what shows it before the request line is complete): awaiting
  // its head from that receipt. Within a tick of the first byte when several came in one tick.
  static void first_byte(Conn& conn, Clock::time_point now) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(conn.fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
    const auto received = now - std::chrono::milliseconds(info.tcpi_last_data_recv);
    // The kernel counts in jiffies (up to 10 ms each): the previous request's last bytes can look that
    // much younger. A next request within the margin is seen at its next byte, or by the URI callback.
    if (received <= conn.since + k_receipt_margin) return;
    conn.phase = Conn::Phase::awaiting_head;
    conn.since = received;
  }

  void sweep() {
    const auto timeout = std::chrono::milliseconds(limits.header_timeout_ms);
    const auto tick = std::clamp<std::chrono::milliseconds>(timeout / 5, std::chrono::milliseconds(10),
                                                            std::chrono::milliseconds(200));
    std::unique_lock lock(mutex);
    std::optional<Clock::time_point> next_held;
    while (!stopping) {
      if (next_held) sweeper_cv.wait_until(lock, std::min(*next_held, Clock::now() + tick));
      else sweeper_cv.wait_for(lock, tick);
      const auto now = Clock::now();
      std::vector<MHD_Connection*> due;
      next_held = take_due(now, due);
      if (!due.empty()) {
        lock.unlock();
        for (MHD_Connection* c : due) loop.resume(c);
        lock.lock();
      }
      for (Conn* conn : conns) {
        if (conn->phase == Conn::Phase::idle) first_byte(*conn, now);
        if (conn->shot || conn->phase == Conn::Phase::busy || conn->phase == Conn::Phase::idle ||
            now - conn->since < timeout)
          continue;
        if (conn->phase == Conn::Phase::body) {
          const double seconds = std::chrono::duration<double>(now - conn->since).count();
          if (limits.body_min_rate == 0 ||
              static_cast<double>(conn->body_bytes) >= static_cast<double>(limits.body_min_rate) * seconds)
            continue;
        }
        conn->shot = true;
        // Best effort: the socket is non-blocking and the answer small. MHD notifies CLOSED (which
        // takes this mutex) before it closes the descriptor, so it is still this connection's.
        (void)!::send(conn->fd, timeout_answer.data(), timeout_answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        ::shutdown(conn->fd, SHUT_RDWR);
      }
    }
  }
};

namespace {

Listener::Impl* impl_of(void* cls) { return static_cast<Listener::Impl*>(cls); }

MHD_Result on_accept(void* cls, const sockaddr* addr, socklen_t) { return impl_of(cls)->accept_policy(addr); }

// No exception may cross into libmicrohttpd (C): each callback catches what it could throw (memory).
void on_connection(void* cls, MHD_Connection* c, void** socket_context, MHD_ConnectionNotificationCode code) {
  try {
    if (code == MHD_CONNECTION_NOTIFY_STARTED) impl_of(cls)->connection_started(c, socket_context);
    else impl_of(cls)->connection_closed(socket_context);
  } catch (const std::exception& e) {
    spdlog::warn("http: connection bookkeeping failed: {}", e.what());
  }
}

void* on_uri(void* cls, const char* uri, MHD_Connection* c) {
  try {
    auto ex = std::make_unique<Exchange>();
    ex->target = uri ? uri : "";
    impl_of(cls)->request_begun(c);
    return ex.release();
  } catch (const std::exception&) {
    return nullptr;  // on_request opens one; this request then matches no route
  }
}

size_t keep_escaped(void*, MHD_Connection*, char* s) { return std::strlen(s); }

MHD_Result on_request(void* cls, MHD_Connection* c, const char*, const char* method, const char*, const char* upload,
                      size_t* upload_size, void** con_cls) {
  try {
    return impl_of(cls)->on_request(c, method, upload, upload_size, con_cls);
  } catch (const std::exception& e) {
    spdlog::warn("http: request dropped: {}", e.what());
    return MHD_NO;  // MHD closes the connection
  }
}

void on_completed(void* cls, MHD_Connection* c, void** con_cls, MHD_RequestTerminationCode) {
  impl_of(cls)->request_completed(c, con_cls);
}

// 2,000 connections a listener need more descriptors than a default soft limit of 1,024.
void raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

Result<ListenerLimits> listener_limits(const Settings& settings, http::ListenerKind kind) {
  ListenerLimits l;
  l.max_connections = static_cast<int>(settings.integer("http-max-connections"));
  l.max_connections_per_ip = static_cast<int>(settings.integer("http-max-connections-per-ip"));
  l.header_timeout_ms = settings.integer("http-header-timeout-ms");
  l.idle_timeout_seconds = static_cast<int>(settings.integer("http-idle-timeout-seconds"));
  l.body_min_rate = settings.integer("http-body-min-rate");
  l.body_budget = settings.integer("http-body-budget");
  // The control listener is loopback only: every client is this machine, so only the total cap
  // applies, and it is never behind a proxy.
  if (kind == http::ListenerKind::control) l.max_connections_per_ip = l.max_connections;
  if (kind == http::ListenerKind::public_) l.trusted_proxies = settings.get("trusted-proxies");
  l.workers = kind == http::ListenerKind::public_ ? 16 : 8;
  if (auto t = net::TrustedProxies::parse(l.trusted_proxies); !t)
    return fail(ErrorCode::bad_request,
                "setting trusted-proxies from " + settings.origin("trusted-proxies") + ": " + t.error().message);
  return l;
}

Result<std::pair<std::string, int>> parse_listen(const std::string& text) {
  auto hp = net::parse_host_port(text, "listen address");
  if (!hp) return std::unexpected(hp.error());
  return std::make_pair(std::move(hp->host), int{hp->port});
}

Listener::Listener(http::ListenerKind kind) : m_kind(kind) {
  (void)route_table();  // built (and its scopes checked) at start, not on the first request
}

Listener::~Listener() {
  stop();
  if (m_fd >= 0) ::close(m_fd);
}

Result<int> Listener::bind(const std::string& host, int port) {
  const auto refused = [&](const std::string& why) {
    return fail(ErrorCode::service_unavailable, "cannot listen on " + host + ":" + std::to_string(port) + " (" + why +
                                                    "; another alumia-connectd may be running)");
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return refused(::gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && m_fd < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, k_listen_backlog) == 0) {
      m_fd = fd;
    } else {
      why = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (m_fd < 0) return refused(why == "Address already in use" ? "address in use" : why);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&bound), &len);
  m_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return m_port;
}

Status Listener::start(DaemonContext& ctx) {
  auto limits = listener_limits(ctx.settings, m_kind);
  if (!limits) return std::unexpected(limits.error());
  auto trusted = net::TrustedProxies::parse(limits->trusted_proxies);
  if (!trusted) return std::unexpected(trusted.error());
  raise_descriptor_limit();
  m_impl = std::make_unique<Impl>(m_kind, ctx, std::move(*limits), std::move(*trusted));
  Impl& s = *m_impl;
  // epoll driven by our own loop, not MHD's internal epoll thread, which can stall every connection until
  // the idle timeout; the loop also accepts, every pending connection a turn where MHD takes 11 (mhd_loop.hpp;
  // docs/ARCHITECTURE.md, "The poll thread"). So MHD gets no listen socket: m_fd stays ours.
  const unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
  MHD_OptionItem options[] = {
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&log_from_mhd), nullptr},  // first, for every message
      // Our cap is enforced by the accept policy, which closes the excess at once; MHD's own, a little
      // higher, would leave it waiting in the backlog.
      {MHD_OPTION_CONNECTION_LIMIT, s.limits.max_connections + 16, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, s.limits.idle_timeout_seconds, nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(k_connection_memory), nullptr},
      // 0, not 1: in 0.9.75 level 1 adds only two refusals (no Host on HTTP/1.1; a space in the target),
      // both made by on_head with the envelope, whereas MHD's own 400 for a missing Host writes its status
      // line twice (its state machine builds the header block again after parse_connection_headers
      // queued the error).
      {MHD_OPTION_STRICT_FOR_CLIENT, 0, nullptr},
      {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&on_uri), &s},
      {MHD_OPTION_UNESCAPE_CALLBACK, reinterpret_cast<intptr_t>(&keep_escaped), nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection), &s},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed), &s},
      {MHD_OPTION_END, 0, nullptr},
  };
  s.mhd = MHD_start_daemon(flags, 0, &on_accept, &s, &on_request, &s, MHD_OPTION_ARRAY, options, MHD_OPTION_END);
  if (s.mhd == nullptr) {
    m_impl.reset();
    return fail(ErrorCode::service_unavailable, "cannot start the HTTP server on port " + std::to_string(m_port));
  }
  if (!s.loop.start(s.mhd, m_kind == http::ListenerKind::public_ ? "http-public" : "http-control", m_fd)) {
    MHD_stop_daemon(s.mhd);
    m_impl.reset();
    return fail(ErrorCode::service_unavailable,
                "cannot start the HTTP server's event loop on port " + std::to_string(m_port) + " (epoll, eventfd)");
  }
  s.sweeper = std::thread([&s] { s.sweep(); });
  return {};
}

void Listener::stop() {
  if (!m_impl) return;
  Impl& s = *m_impl;
  // Queued and running requests finish and resume their connections; then MHD answers them and
  // closes everything.
  s.pool.stop();
  s.close_handing();  // answers still with the intake log's flusher: the store is open, so they come
  {
    std::lock_guard lock(s.mutex);
    s.stopping = true;
  }
  s.sweeper_cv.notify_all();
  if (s.sweeper.joinable()) s.sweeper.join();
  {
    std::vector<MHD_Connection*> due;  // held answers go out now
    {
      std::lock_guard lock(s.mutex);
      s.take_due(Clock::now(), due);
    }
    for (MHD_Connection* c : due) s.loop.resume(c);
  }
  s.loop.stop();
  MHD_stop_daemon(s.mhd);
  ::close(m_fd);  // the loop accepted from it (MHD was given none); connects from now on are refused
  m_fd = -1;
  m_impl.reset();
}

}  // namespace alumia::daemon
