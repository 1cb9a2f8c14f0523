// spike13 mhd_server: GNU libmicrohttpd 0.9.75 prototype of the daemon's two listeners.
//
// Model: MHD's internal epoll thread(s) (MHD_USE_EPOLL_INTERNAL_THREAD, MHD_OPTION_THREAD_POOL_SIZE
// for more than one) read and parse; the access handler runs on that thread and only judges the
// head and collects the body. A complete request is handed to a fixed pool of workers over a
// bounded queue (503 when full) and its connection suspended (MHD_suspend_connection); the worker
// makes the body durable and resumes it, and MHD calls the handler again, which queues the reply.
// So no poll thread ever waits on the disk, and a connection costs no thread while idle or slow.
//
// What MHD 0.9.75 gives natively: a total connection cap (MHD_OPTION_CONNECTION_LIMIT) and a
// per-client-IP cap (MHD_OPTION_PER_IP_CONNECTION_LIMIT; the excess is accepted and closed at
// once), an inactivity timeout (MHD_OPTION_CONNECTION_TIMEOUT: idle keep-alive and stalled reads),
// a per-connection memory pool (MHD_OPTION_CONNECTION_MEMORY_LIMIT) that bounds header bytes and so
// the header count, strict client parsing (MHD_OPTION_STRICT_FOR_CLIENT), the handler called once
// the head is complete and before any body byte is read (so a refusal there never reads the body;
// MHD closes the connection after an early reply), and a listen backlog option. What it lacks and is
// built here: a header-completion deadline (the inactivity timeout never fires on a trickle): a
// sweeper thread tracks every connection from MHD_OPTION_NOTIFY_CONNECTION, clears the deadline
// when the handler first sees a request, re-arms it when the request completes, and past it writes
// a 408 and shuts the socket down (MHD has no call to close a connection from outside); and the
// work pool with suspend/resume.
#include "common.hpp"

#include <microhttpd.h>
#include <signal.h>

#include <unordered_set>

namespace {

using spike::Options;
using Clock = std::chrono::steady_clock;

struct ConnState {
  int fd = -1;
  bool awaiting = true;  // no complete head seen since the connection opened or its last reply
  bool shot = false;
  Clock::time_point deadline;
};

struct Server {
  const Options& o;
  bool is_public;
  spike::Durable* durable = nullptr;
  spike::WorkPool* pool = nullptr;
  std::mutex mu{};
  std::unordered_set<ConnState*> conns{};
  std::atomic<long> deadline_closed{0}, queue_full{0}, served{0}, opened{0}, closed{0};
  MHD_Daemon* d = nullptr;
};
Server* g_pub = nullptr;

enum class Phase { reading, queued, done };
struct Req {
  Phase phase = Phase::reading;
  std::string body;
  int status = 0;
};

MHD_Result queue(MHD_Connection* c, int status, bool close, const std::string& text = {}) {
  MHD_Response* r = MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "text/plain");
  if (close) MHD_add_response_header(r, "Connection", "close");
  MHD_Result ret = MHD_queue_response(c, static_cast<unsigned>(status), r);
  MHD_destroy_response(r);
  return ret;
}

MHD_Result collect(void* cls, MHD_ValueKind, const char* k, const char* v) {
  static_cast<spike::HeaderList*>(cls)->emplace_back(k, v ? v : "");
  return MHD_YES;
}

void on_connection(void* cls, MHD_Connection* c, void** socket_context, MHD_ConnectionNotificationCode toe) {
  auto* S = static_cast<Server*>(cls);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* st = new ConnState;
    st->fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd;
    st->deadline = Clock::now() + std::chrono::seconds(S->o.header_timeout);
    *socket_context = st;
    S->opened++;
    std::lock_guard lock(S->mu);
    S->conns.insert(st);
  } else {
    auto* st = static_cast<ConnState*>(*socket_context);
    S->closed++;
    {
      std::lock_guard lock(S->mu);
      S->conns.erase(st);
    }
    delete st;
  }
}

ConnState* state_of(MHD_Connection* c) {
  const MHD_ConnectionInfo* i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? static_cast<ConnState*>(i->socket_context) : nullptr;
}

void on_completed(void* cls, MHD_Connection* c, void** con_cls, MHD_RequestTerminationCode) {
  auto* S = static_cast<Server*>(cls);
  delete static_cast<Req*>(*con_cls);
  *con_cls = nullptr;
  if (ConnState* st = state_of(c)) {
    std::lock_guard lock(S->mu);
    st->awaiting = true;
    st->deadline = Clock::now() + std::chrono::seconds(S->o.header_timeout);
  }
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                      const char* upload, size_t* upload_size, void** con_cls) {
  auto* S = static_cast<Server*>(cls);
  auto* rq = static_cast<Req*>(*con_cls);
  if (rq == nullptr) {  // the head is complete; no body byte has been read yet
    if (ConnState* st = state_of(c)) {
      std::lock_guard lock(S->mu);
      st->awaiting = false;
    }
    spike::HeaderList headers;
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect, &headers);
    const spike::Verdict v = spike::judge_head(method, headers, S->o);
    if (v.status != 0) return queue(c, v.status, true, std::to_string(v.status) + "\n");
    // A reply queued in this first call counts as early (MHD then closes): answers that keep the
    // connection are queued on the next call.
    const std::string_view m = method, u = url;
    rq = new Req;
    *con_cls = rq;
    rq->phase = Phase::done;
    rq->status = 200;
    if (!S->is_public) {
      if (m == "GET" && u == "/stats") {
        Server& p = *g_pub;
        std::size_t n;
        {
          std::lock_guard lock(p.mu);
          n = p.conns.size();
        }
        rq->body = "conns=" + std::to_string(n) + " opened=" + std::to_string(p.opened) +
                   " deadline_closed=" + std::to_string(p.deadline_closed) +
                   " queue_full=" + std::to_string(p.queue_full) + " served=" + std::to_string(p.served) + "\n";
      } else if (m != "GET" || u != "/status") {
        rq->status = 404;
      }
      return MHD_YES;
    }
    if (m != "POST" || u != "/hook") {
      rq->status = 404;  // its (bounded) body is read and dropped
      return MHD_YES;
    }
    rq->phase = Phase::reading;
    rq->body.reserve(v.length);
    return MHD_YES;
  }
  if (rq->phase == Phase::reading) {
    if (*upload_size != 0) {
      rq->body.append(upload, *upload_size);
      *upload_size = 0;
      return MHD_YES;
    }
    rq->phase = Phase::queued;
    MHD_suspend_connection(c);
    const bool pushed = S->pool->push([S, c, rq] {
      rq->status = S->durable->commit(std::move(rq->body)) ? 200 : 503;
      rq->body.clear();
      rq->phase = Phase::done;
      S->served++;
      MHD_resume_connection(c);
    });
    if (!pushed) {
      S->queue_full++;
      rq->status = 503;
      rq->phase = Phase::done;
      MHD_resume_connection(c);
    }
    return MHD_YES;
  }
  if (rq->phase == Phase::done) {
    if (*upload_size != 0) {
      *upload_size = 0;
      return MHD_YES;
    }
    return queue(c, rq->status, false, rq->body);
  }
  return MHD_YES;  // resumed before the worker finished: not expected
}

void sweep(Server& S, std::atomic<bool>& stop) {
  while (!stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto now = Clock::now();
    std::lock_guard lock(S.mu);
    for (ConnState* st : S.conns) {
      if (!st->awaiting || st->shot || now < st->deadline) continue;
      st->shot = true;
      S.deadline_closed++;
      spike::send_canned(st->fd, 408);
      ::shutdown(st->fd, SHUT_RDWR);  // MHD sees the end of the stream and closes it on its thread
    }
  }
}

MHD_Daemon* start(Server& S, int listen_fd, int threads) {
  const Options& o = S.o;
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  MHD_OptionItem opts[] = {
      {MHD_OPTION_LISTEN_SOCKET, listen_fd, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, o.max_conns, nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, o.per_ip, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, o.idle_timeout, nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(o.max_header_bytes) * 2, nullptr},
      {MHD_OPTION_STRICT_FOR_CLIENT, o.strict, nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection), &S},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed), &S},
      {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, nullptr},
      {MHD_OPTION_END, 0, nullptr},
  };
  MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, on_request, &S, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (d == nullptr) {
    std::fprintf(stderr, "MHD_start_daemon failed\n");
    std::exit(1);
  }
  return d;
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

  spike::Durable durable(o);
  spike::WorkPool pool(o.workers, static_cast<std::size_t>(o.queue));
  Server pub{.o = o, .is_public = true, .durable = &durable, .pool = &pool};
  Server ctl{.o = o, .is_public = false};
  g_pub = &pub;
  pub.d = start(pub, spike::listen_socket(o.public_port, o.backlog), std::max(1, o.io_threads));
  ctl.d = start(ctl, spike::listen_socket(o.control_port, o.backlog), 1);
  std::atomic<bool> stop{false};
  std::thread sweeper_pub([&] { sweep(pub, stop); });
  std::thread sweeper_ctl([&] { sweep(ctl, stop); });
  std::printf("mhd_server public=%d control=%d\n", o.public_port, o.control_port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  stop = true;
  sweeper_pub.join();
  sweeper_ctl.join();
  std::_Exit(0);  // a spike: skip the orderly teardown of connections still open
}
