#pragma once
// What the three parts of oauth::FlowService share (oauth_flow.cpp: start and callback;
// oauth_refresh.cpp: exchange, storage, refresh and reads; oauth_revoke.cpp: disconnect).
#include <cstdint>
#include <string>

namespace alumia::oauth::detail {

inline constexpr int64_t k_flow_ttl_ms = 10 * 60 * 1000;
inline constexpr int64_t k_refresh_margin_ms = 10 * 60 * 1000;
// The fields of a connection's row in the secrets table.
inline constexpr const char* k_at = "oauth.access_token";
inline constexpr const char* k_rt = "oauth.refresh_token";
inline constexpr const char* k_tt = "oauth.token_type";

inline std::string truncate_text(std::string s, std::size_t n = 200) {
  if (s.size() > n) s = s.substr(0, n) + "…";
  return s;
}

}  // namespace alumia::oauth::detail
