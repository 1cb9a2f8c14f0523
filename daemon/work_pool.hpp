#pragma once
// The workers of a listener (server.cpp): the blocking half of every request (the store, verification,
// outbound calls) runs here while the listener's poll thread goes on with other connections.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace alumia::daemon {

// A fixed pool of workers over a bounded queue: push() refuses when the queue is full and the caller
// answers 503. Each connection has at most one job queued, so a depth of the connection cap never
// refuses for want of room; it bounds memory if the workers fall behind.
class WorkPool {
 public:
  WorkPool(int threads, std::size_t depth) : m_depth(depth) {
    for (int i = 0; i < threads; ++i) m_threads.emplace_back([this] { run(); });
  }
  ~WorkPool() { stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  bool push(std::function<void()> job) {
    {
      std::lock_guard lock(m_mutex);
      if (m_stop || m_queue.size() >= m_depth) return false;
      m_queue.push_back(std::move(job));
    }
    m_cv.notify_one();
    return true;
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
        m_cv.wait(lock, [&] { return m_stop || !m_queue.empty(); });
        if (m_queue.empty()) return;
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

}  // namespace alumia::daemon
