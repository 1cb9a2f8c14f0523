#include "event_tail.hpp"

#include "output.hpp"

namespace alumia::cli {

std::vector<nlohmann::json> EventTail::advance(const std::vector<nlohmann::json>& window) {
  std::vector<nlohmann::json> fresh;
  std::set<std::string> ids;
  for (auto it = window.rbegin(); it != window.rend(); ++it) {
    const std::string id = jstr(*it, "id");
    if (id.empty() || !ids.insert(id).second) continue;
    if (!m_seen.contains(id)) fresh.push_back(*it);
  }
  m_seen = std::move(ids);
  return fresh;
}

}  // namespace alumia::cli
