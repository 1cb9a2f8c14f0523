#pragma once
// `events tail --follow`: which events of a poll are new. The daemon lists events newest first; each
// poll reads a window of the newest events, and the ones not in the previous window are printed,
// oldest first. Comparing ids rather than times also catches an event whose commit landed after a
// newer one's (the receiver commits in batches).
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

namespace alumia::cli {

class EventTail {
 public:
  bool seen(const std::string& id) const { return m_seen.contains(id); }
  // `window`: one poll's events, newest first. Returns those not seen before, oldest first, and
  // remembers the window (an event older than all of it can never come back into a newest-first window).
  std::vector<nlohmann::json> advance(const std::vector<nlohmann::json>& window);

 private:
  std::set<std::string> m_seen;
};

}  // namespace alumia::cli
