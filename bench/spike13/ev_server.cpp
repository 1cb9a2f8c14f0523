// spike13 ev_server: libevent 2.1.12 evhttp prototype of the daemon's two listeners.
//
// Model (learnt from Bitcoin Core's httpserver.cpp, not copied): one event loop thread per listener
// (the public one may have several, sharing the listening socket), a fixed pool of workers over a
// bounded queue (503 when full), and replies handed back to the loop thread through a queue and
// event_active() (evthread_use_pthreads makes that call thread-safe).
//
// What evhttp 2.1.12 gives natively: max header bytes (evhttp_set_max_headers_size; over it a 400
// and close), a listener-wide body cap (evhttp_set_max_body_size: 413 and close before the body is
// read), one inactivity timeout for read and write (evhttp_set_timeout: idle keep-alive and stalled
// reads, closed without a reply). What it lacks and is built here:
//  - per-client-IP and total connection caps: 2.1 has no accept hook with the address (2.2 has
//    evhttp_set_max_connections); here a bevcb (called for every accepted connection) schedules a
//    zero-delay event that reads the new connection's peer once evhttp has attached the socket,
//    counts it, and refuses the excess with a canned 503 + close;
//  - a header-completion deadline: the inactivity timeout never fires on a trickle; a per-connection
//    timer armed at accept and after each reply, cleared when the request reaches the callback, sends
//    408 and frees the connection. 2.1 calls the user only once the whole request (body included) is
//    read, so this deadline covers headers and body together;
//  - header count, duplicate Content-Length, Transfer-Encoding, lengths on bodiless methods: judged
//    in the request callback (judge_head), i.e. after evhttp has read the body by its own rules
//    (first Content-Length, or chunked); every refusal closes the connection, so no leftover byte is
//    ever parsed as a request. There is no server-side hook between headers and body in 2.1
//    (evhttp_request_set_header_cb works on client requests only; 2.2 adds evhttp_set_newreqcb).
#include "common.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <signal.h>

#include <unordered_map>

namespace {

using spike::Options;
struct Shared;
Shared* g_pub = nullptr;  // /stats on the control listener reports the public one

struct Shared {
  const Options& o;
  spike::Durable durable;
  spike::WorkPool pool;
  std::mutex caps_mu;
  std::unordered_map<std::string, int> per_ip;
  int total = 0;
  std::atomic<long> refused{0}, deadline_closed{0}, queue_full{0}, served{0};
  explicit Shared(const Options& opt) : o(opt), durable(opt), pool(opt.workers, static_cast<std::size_t>(opt.queue)) {}
};

struct Loop;
struct Conn {
  Loop* loop;
  evhttp_connection* evcon;
  std::string addr;
  event* deadline;
};

struct Loop {
  Shared& sh;
  bool is_public;
  event_base* base = nullptr;
  evhttp* http = nullptr;
  event* done_ev = nullptr;
  std::mutex done_mu;
  std::vector<std::pair<evhttp_request*, int>> done;
  std::unordered_map<evhttp_connection*, Conn*> conns;
  std::thread thread;
  Loop(Shared& s, bool pub) : sh(s), is_public(pub) {}
};

void reply(evhttp_request* req, int status, bool close) {
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", "text/plain");
  if (close) evhttp_add_header(out, "Connection", "close");
  evbuffer* b = evbuffer_new();
  if (status != 200) evbuffer_add_printf(b, "%d\n", status);
  evhttp_send_reply(req, status, spike::status_text(status), b);
  evbuffer_free(b);
}

void arm(Conn* c) {
  timeval tv{c->loop->sh.o.header_timeout, 0};
  evtimer_add(c->deadline, &tv);
}

void on_close(evhttp_connection* evcon, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  {
    std::lock_guard lock(c->loop->sh.caps_mu);
    --c->loop->sh.total;
    if (--c->loop->sh.per_ip[c->addr] == 0) c->loop->sh.per_ip.erase(c->addr);
  }
  c->loop->conns.erase(evcon);
  event_free(c->deadline);
  delete c;
}

void on_deadline(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->loop->sh.deadline_closed++;
  spike::send_canned(bufferevent_getfd(evhttp_connection_get_bufferevent(c->evcon)), 408);
  evhttp_connection_free(c->evcon);  // runs on_close
}

struct Admit {
  Loop* loop;
  bufferevent* bev;
};

// Runs on the loop right after evhttp attached the accepted socket to `bev` (and made the
// connection its callback argument), or after the connection was already freed (callbacks cleared).
void on_admit(evutil_socket_t, short, void* arg) {
  std::unique_ptr<Admit> a(static_cast<Admit*>(arg));
  bufferevent_data_cb r, w;
  bufferevent_event_cb e;
  void* cbarg = nullptr;
  bufferevent_getcb(a->bev, &r, &w, &e, &cbarg);
  auto* evcon = static_cast<evhttp_connection*>(cbarg);
  if (evcon != nullptr) {
    Loop* L = a->loop;
    char* addr = nullptr;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    std::string ip = addr ? addr : "?";
    bool ok;
    {
      std::lock_guard lock(L->sh.caps_mu);
      ok = L->sh.total < L->sh.o.max_conns && L->sh.per_ip[ip] < L->sh.o.per_ip;
      if (ok) ++L->sh.total, ++L->sh.per_ip[ip];
    }
    if (!ok) {
      L->sh.refused++;
      spike::send_canned(bufferevent_getfd(a->bev), 503);
      evhttp_connection_free(evcon);
    } else {
      auto* c = new Conn{L, evcon, ip, nullptr};
      c->deadline = evtimer_new(L->base, on_deadline, c);
      arm(c);
      L->conns[evcon] = c;
      evhttp_connection_set_closecb(evcon, on_close, c);
    }
  }
  bufferevent_decref(a->bev);
}

bufferevent* make_bev(event_base* base, void* arg) {
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_incref(bev);  // kept alive until on_admit has looked at it
  static const timeval zero{0, 0};
  event_base_once(base, -1, EV_TIMEOUT, on_admit, new Admit{static_cast<Loop*>(arg), bev}, &zero);
  return bev;
}

void on_complete(evhttp_request* req, void* arg) {
  auto* L = static_cast<Loop*>(arg);
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  if (auto it = L->conns.find(evcon); it != L->conns.end()) arm(it->second);  // the next request's deadline
}

void on_done(evutil_socket_t, short, void* arg) {
  auto* L = static_cast<Loop*>(arg);
  std::vector<std::pair<evhttp_request*, int>> batch;
  {
    std::lock_guard lock(L->done_mu);
    batch.swap(L->done);
  }
  for (auto [req, status] : batch) reply(req, status, false);
}

const char* method_name(evhttp_cmd_type t) {
  switch (t) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
    default:
      return "OTHER";
  }
}

void on_request(evhttp_request* req, void* arg) {
  auto* L = static_cast<Loop*>(arg);
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  if (auto it = L->conns.find(evcon); it != L->conns.end()) evtimer_del(it->second->deadline);
  evhttp_request_set_on_complete_cb(req, on_complete, L);

  const std::string_view method = method_name(evhttp_request_get_command(req));
  spike::HeaderList headers;
  evkeyvalq* in = evhttp_request_get_input_headers(req);
  for (evkeyval* kv = in->tqh_first; kv != nullptr; kv = kv->next.tqe_next) headers.emplace_back(kv->key, kv->value);
  const spike::Verdict v = spike::judge_head(method, headers, L->sh.o);
  if (v.status != 0) return reply(req, v.status, true);

  const std::string_view uri = evhttp_request_get_uri(req);
  if (!L->is_public) {
    if (method == "GET" && uri == "/status") return reply(req, 200, false);
    if (method == "GET" && uri == "/stats") {
      evbuffer* b = evbuffer_new();
      {
        Shared& p = *g_pub;
        std::lock_guard lock(p.caps_mu);
        evbuffer_add_printf(b, "conns=%d refused=%ld deadline_closed=%ld queue_full=%ld served=%ld\n", p.total,
                            p.refused.load(), p.deadline_closed.load(), p.queue_full.load(), p.served.load());
      }
      evhttp_send_reply(req, 200, "OK", b);
      evbuffer_free(b);
      return;
    }
    return reply(req, 404, false);
  }
  if (method != "POST" || uri != "/hook") return reply(req, 404, false);
  evbuffer* body = evhttp_request_get_input_buffer(req);
  std::string bytes(evbuffer_get_length(body), '\0');
  evbuffer_remove(body, bytes.data(), bytes.size());
  const bool queued = L->sh.pool.push([L, req, b = std::move(bytes)]() mutable {
    const int status = L->sh.durable.commit(std::move(b)) ? 200 : 503;
    L->sh.served++;
    {
      std::lock_guard lock(L->done_mu);
      L->done.emplace_back(req, status);
    }
    event_active(L->done_ev, EV_READ, 0);
  });
  if (!queued) {
    L->sh.queue_full++;
    reply(req, 503, false);
  }
}

void start_loop(Loop& L, int listen_fd) {
  const Options& o = L.sh.o;
  L.base = event_base_new();
  L.http = evhttp_new(L.base);
  evhttp_set_timeout(L.http, o.idle_timeout);
  evhttp_set_max_headers_size(L.http, o.max_header_bytes);
  evhttp_set_max_body_size(L.http, static_cast<ev_ssize_t>(o.body_cap));
  if (o.judge) evhttp_set_allowed_methods(L.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_set_bevcb(L.http, make_bev, &L);
  evhttp_set_gencb(L.http, on_request, &L);
  L.done_ev = event_new(L.base, -1, 0, on_done, &L);
  if (evhttp_accept_socket_with_handle(L.http, listen_fd) == nullptr) {
    std::fprintf(stderr, "evhttp_accept_socket failed\n");
    std::exit(1);
  }
  L.thread = std::thread([&L] { event_base_dispatch(L.base); });
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = spike::parse_options(argc, argv);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  spike::ignore_sigpipe();
  evthread_use_pthreads();

  Shared pub(o);
  g_pub = &pub;
  Options co = o;
  co.workers = 1;
  co.queue = 64;
  co.durable_dir.clear();
  co.delay_ms = 0;
  Shared ctl(co);

  const int pfd = spike::listen_socket(o.public_port, o.backlog);
  const int cfd = spike::listen_socket(o.control_port, o.backlog);
  std::vector<std::unique_ptr<Loop>> loops;
  for (int i = 0; i < std::max(1, o.io_threads); ++i) {
    loops.push_back(std::make_unique<Loop>(pub, true));
    start_loop(*loops.back(), i == 0 ? pfd : dup(pfd));
  }
  loops.push_back(std::make_unique<Loop>(ctl, false));
  start_loop(*loops.back(), cfd);
  std::printf("ev_server public=%d control=%d\n", o.public_port, o.control_port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  for (auto& L : loops) event_base_loopbreak(L->base);
  for (auto& L : loops) L->thread.join();
  std::_Exit(0);  // a spike: skip the orderly teardown of connections still open
}
