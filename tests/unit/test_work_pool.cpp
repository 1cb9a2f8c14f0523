// The listeners' WorkPool: a bounded queue that refuses when full (the listener answers 503), and a
// stop that runs what was queued (requests in flight finish at shutdown) and refuses what comes after.
#include "work_pool.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>

using alumia::daemon::WorkPool;

TEST_CASE("work pool: refuses when its queue is full, runs everything queued before stop", "[listen][pool]") {
  std::atomic<int> ran{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  WorkPool pool(1, 2);
  REQUIRE(pool.push([&] {
    started.set_value();
    released.wait();
    ++ran;
  }));
  started.get_future().wait();  // the one worker is busy; the queue is empty
  CHECK(pool.push([&] { ++ran; }));
  CHECK(pool.push([&] { ++ran; }));
  CHECK_FALSE(pool.push([&] { ++ran; }));  // full: the caller answers 503
  release.set_value();
  pool.stop();
  CHECK(ran == 3);
  CHECK_FALSE(pool.push([&] { ++ran; }));  // stopped
}

TEST_CASE("work pool: starts no worker until a job comes, then one per job waiting, up to its size", "[listen][pool]") {
  WorkPool pool(3, 100);
  CHECK(pool.started() == 0);  // an idle listener holds no worker thread
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> running{0};
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i)
    REQUIRE(pool.push([&] {
      ++running;
      released.wait();
      ++ran;
    }));
  CHECK(pool.started() == 3);  // never more than its size, however many are queued
  release.set_value();
  pool.stop();
  CHECK(ran == 10);
}
