#pragma once
// The event loop of a libmicrohttpd daemon (the listeners, server.cpp, and bench_bare_server --server
// mhd): MHD in epoll mode without its internal thread (MHD_USE_EPOLL), driven by a thread of ours.
//
// Why not MHD_USE_EPOLL_INTERNAL_THREAD. In MHD 0.9.75 (and upstream's master still) MHD_epoll()
// computes its wait once (the earliest idle timeout: seconds) and then drains the epoll set with
//     while (num_events == MAX_EVENTS /* 128 */) num_events = epoll_wait(..., 128, that_wait);
// When one epoll_wait returns exactly 128 events (or 256, ...), the next one blocks for the whole wait
// although those 128 connections are ready and not yet served (they sit in MHD's "eready" list until the
// loop ends). If MHD's wake-up (the ITC, written by MHD_resume_connection on other threads) was among
// the 128, it has been cleared, so the resumed connections wait too. When every client is waiting for
// an answer nothing else arrives to wake it: every connection stalls until the idle timeout closes it
// (bench/public (c) at 256 connections, every round once the intake log's flusher resumed connections
// in bursts). The poll mode has no such loop but walks every descriptor on each wake-up.
//
// Here MHD_run() runs with a zero wait, so its inner epoll_wait never blocks, and this loop does the
// waiting: poll() on MHD's epoll descriptor and on an eventfd of its own, for at most MHD_get_timeout()
// (0 while MHD still has ready connections). MHD has no wake-up of its own in this mode, so a connection
// resumed from another thread must go through resume(): MHD_resume_connection(), then the eventfd. The
// eventfd is read before MHD_run() looks for resumed connections, so every resume is followed by a run
// that starts after it.
//
// The loop also accepts. MHD 0.9.75's MHD_epoll() takes at most 11 connections from the listen socket
// per run ("the rest will be accepted on next turn"), and a run also serves every ready connection. When
// a crowd connects at once (bench/public (a): 2,000 clients), the connections already accepted are
// served turn after turn while the rest wait in the kernel's accept queue, 11 a turn: traced with perf
// (syscalls:sys_exit_accept4 of the poll thread against the client's connects), the queue held ~500 and
// the last connections were accepted ~1 s after their handshake had completed (load 14); on a quiet
// machine that wait was the ~300 ms p99 = max of (a). No packet is lost (nstat: no ListenOverflows nor
// retransmissions on the listener), so it is not a TCP timeout: it is waiting for accept. So MHD is
// started without the socket (MHD_USE_NO_LISTEN_SOCKET), and each turn this loop accepts every pending
// connection (up to k_max_accepts) and hands it over with MHD_add_connection(), which applies the same
// limits and accept policy as MHD's own accept.
//
// Threads: MHD's callbacks run on this loop's thread (the "poll thread"); resume() may be called from
// any thread; start() and stop() from the owner. The daemon must have been started with
// MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME and without MHD_USE_INTERNAL_POLLING_THREAD; with a listen
// socket given to start(), also with MHD_USE_NO_LISTEN_SOCKET.
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace alumia::daemon {

class MhdLoop {
 public:
  MhdLoop() = default;
  ~MhdLoop() { stop(); }
  MhdLoop(const MhdLoop&) = delete;
  MhdLoop& operator=(const MhdLoop&) = delete;

  // Starts the thread running `mhd`; false (and nothing started) when MHD has no epoll descriptor (not
  // started in external epoll mode) or no eventfd can be made. `listen_fd`: a non-blocking listening
  // socket MHD was not given (MHD_USE_NO_LISTEN_SOCKET), which the loop accepts from; the caller keeps
  // it and closes it after stop().
  bool start(MHD_Daemon* mhd, std::string name = {}, int listen_fd = -1) {
    const MHD_DaemonInfo* info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == nullptr || info->epoll_fd < 0) return false;
    m_wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m_wake < 0) return false;
    m_mhd = mhd;
    m_epoll = info->epoll_fd;
    m_listen = listen_fd;
    m_thread = std::thread([this, name = std::move(name)] {
      if (!name.empty()) ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
      run();
    });
    return true;
  }

  // Resumes a suspended connection from any thread (MHD_resume_connection, then a wake-up).
  void resume(MHD_Connection* c) {
    MHD_resume_connection(c);
    wake();
  }

  // Ends the loop after a last few runs (connections resumed just before are answered, as far as their
  // sockets take the bytes at once), and joins it. The caller then calls MHD_stop_daemon.
  void stop() {
    if (!m_thread.joinable()) return;
    m_stopping.store(true, std::memory_order_release);
    wake();
    m_thread.join();
    ::close(m_wake);
    m_wake = -1;
  }

 private:
  static constexpr int k_max_wait_ms = 1000;
  static constexpr int k_final_runs = 3;
  // Connections accepted per turn at most: a crowd of thousands is taken in a few turns, and a stream of
  // connects cannot keep the loop from serving the connections it holds.
  static constexpr int k_max_accepts = 1024;
  // Out of descriptors (or kernel memory): the listen socket stays readable, so it is left alone this
  // long instead of being polled in a busy loop; MHD's idle timeouts free descriptors meanwhile.
  static constexpr auto k_accept_pause = std::chrono::milliseconds(100);
  using Clock = std::chrono::steady_clock;

  // One eventfd write per turn of the loop, however many connections are resumed before it runs: the
  // intake log's flusher resumes a batch of connections at a time, and each write is a system call on the
  // thread every acknowledgement waits for. The loop clears the flag before MHD_run(), so a resume after
  // the clear writes again; a resume before it is seen by that MHD_run() (the exchanges order them).
  void wake() {
    if (m_wake >= 0 && !m_wake_pending.exchange(true, std::memory_order_acq_rel)) (void)::eventfd_write(m_wake, 1);
  }

  void run() {
    pollfd fds[3] = {{m_epoll, POLLIN, 0}, {m_wake, POLLIN, 0}, {m_listen, POLLIN, 0}};
    const nfds_t n = m_listen >= 0 ? 3 : 2;
    Clock::time_point paused_until{};
    while (!m_stopping.load(std::memory_order_acquire)) {
      MHD_UNSIGNED_LONG_LONG left = 0;
      int wait = k_max_wait_ms;
      if (MHD_get_timeout(m_mhd, &left) == MHD_YES)
        wait = static_cast<int>(std::min<MHD_UNSIGNED_LONG_LONG>(left, k_max_wait_ms));
      const bool paused = n == 3 && Clock::now() < paused_until;
      fds[2].fd = paused ? -1 : m_listen;  // poll ignores a negative descriptor
      if (paused) wait = std::min(wait, static_cast<int>(k_accept_pause.count()));
      fds[0].revents = fds[1].revents = fds[2].revents = 0;
      (void)::poll(fds, n, wait);
      if ((fds[1].revents & POLLIN) != 0) {
        eventfd_t v = 0;
        (void)::eventfd_read(m_wake, &v);
      }
      m_wake_pending.exchange(false, std::memory_order_acq_rel);
      if (n == 3 && (fds[2].revents & POLLIN) != 0 && !accept_pending()) paused_until = Clock::now() + k_accept_pause;
      MHD_run(m_mhd);
    }
    for (int i = 0; i < k_final_runs; ++i) MHD_run(m_mhd);
  }

  // Every connection waiting in the accept queue (k_max_accepts at most) into MHD, which closes the ones
  // its limits or the accept policy refuse. False when out of descriptors or memory.
  bool accept_pending() {
    for (int i = 0; i < k_max_accepts; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd = ::accept4(m_listen, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return !(errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM);
      }
      (void)MHD_add_connection(m_mhd, fd, reinterpret_cast<const sockaddr*>(&addr), len);  // closes fd if refused
    }
    return true;
  }

  MHD_Daemon* m_mhd = nullptr;
  int m_epoll = -1;
  int m_wake = -1;
  int m_listen = -1;
  std::atomic<bool> m_stopping{false};
  std::atomic<bool> m_wake_pending{false};  // an eventfd write is on its way to the loop
  std::thread m_thread;
};

}  // namespace alumia::daemon
