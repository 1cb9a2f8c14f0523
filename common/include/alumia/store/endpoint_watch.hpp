#pragma once
// Endpoint changes made by any daemon on a shared PostgreSQL store, for the caches of this one (SPEC §12:
// "endpoint and secret changes seen by every daemon within a second").
//
// The PostgreSQL webhook store sends NOTIFY k_pg_endpoint_channel with the endpoint's id at the commit of
// every endpoint insert and descriptive update (webhook_store.hpp). EndpointWatch LISTENs on a connection
// of its own, in a thread of its own, and calls `changed(id)` for each, this daemon's own changes
// included. NOTIFY is not durable: what is sent while the connection is down is lost, so after the
// watch (re)connects, and every `recheck` as a backstop, it calls `changed("")`: anything cached may be
// stale, read it again. `changed` runs on the watch's thread and must not block for long.
//
// SQLite needs none of this: one daemon per store, whose services tell its cache directly.
#include <alumia/base/error.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace alumia {

class EndpointWatch {
 public:
  struct Options {
    std::string conninfo;                            // the store's (never logged)
    std::chrono::milliseconds recheck{30'000};       // changed("") at least this often
    std::chrono::milliseconds reconnect_pause{500};  // between attempts while the server is away
  };
  // Fails (SERVICE_UNAVAILABLE) when the first connection cannot be made; later losses are retried.
  static Result<std::unique_ptr<EndpointWatch>> start(Options options, std::function<void(const std::string&)> changed);
  virtual ~EndpointWatch() = default;  // stops the thread and waits for it
};

}  // namespace alumia
