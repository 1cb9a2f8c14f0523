#pragma once
// The workers of a listener (server.cpp): the blocking half of every request (the store, verification,
// outbound calls) runs here while the listener's poll thread goes on with other connections.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace alumia::daemon {

// A pool of up to `threads` workers over a bounded queue: push() refuses when the queue is full and the
// caller answers 503. Each connection has at most one job queued, so a depth of the connection cap never
// refuses for want of room; it bounds memory if the workers fall behind. Workers are started as jobs
// come (one more whenever the queued jobs outnumber the workers waiting, up to `threads`) and then stay:
// an idle listener holds no worker thread (issue 13 item 5, idle RSS: each costs its touched stack and
// its malloc arena), and the first burst starts them within microseconds each.
class WorkPool {
 public:
  WorkPool(int threads, std::size_t depth) : m_max(static_cast<std::size_t>(std::max(threads, 1))), m_depth(depth) {}
  ~WorkPool() { stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  bool push(std::function<void()> job) {
    {
      std::lock_guard lock(m_mutex);
      if (m_stop || m_queue.size() >= m_depth) return false;
      m_queue.push_back(std::move(job));
      if (m_queue.size() > m_waiting && m_threads.size() < m_max) {
        try {
          m_threads.emplace_back([this] { run(); });
        } catch (const std::system_error&) {
          if (m_threads.empty()) {  // no worker at all to run it: refused (503)
            m_queue.pop_back();
            return false;
          }
        }
      }
    }
    m_cv.notify_one();
    return true;
  }
  // How many workers have been started (at most `threads`).
  std::size_t started() {
    std::lock_guard lock(m_mutex);
    return m_threads.size();
  }
  // Runs what is queued, then joins.
  void stop() {
    {
      std::lock_guard lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads)
      if (t.joinable()) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(m_mutex);
        ++m_waiting;
        m_cv.wait(lock, [&] { return m_stop || !m_queue.empty(); });
        --m_waiting;
        if (m_queue.empty()) return;
        job = std::move(m_queue.front());
        m_queue.pop_front();
      }
      job();
    }
  }
  std::size_t m_max;
  std::size_t m_depth;
  std::size_t m_waiting = 0;  // workers waiting for a job (under m_mutex)
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_queue;
  std::vector<std::thread> m_threads;
  bool m_stop = false;
};

}  // namespace alumia::daemon
