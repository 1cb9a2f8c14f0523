#include <alumia/store/domain.hpp>

#include <array>
#include <utility>

namespace alumia {
namespace {
constexpr std::array<std::pair<Scope, std::string_view>, 4> k_scopes{{
    {Scope::connections, "connections"},
    {Scope::tokens, "tokens"},
    {Scope::webhooks, "webhooks"},
    {Scope::admin, "admin"},
}};
constexpr std::array<std::pair<ConnectionStatus, std::string_view>, 5> k_statuses{{
    {ConnectionStatus::pending, "pending"},
    {ConnectionStatus::active, "active"},
    {ConnectionStatus::error, "error"},
    {ConnectionStatus::expired, "expired"},
    {ConnectionStatus::revoked, "revoked"},
}};
}  // namespace

std::optional<Scope> parse_scope(std::string_view s) {
  for (const auto& [scope, name] : k_scopes)
    if (name == s) return scope;
  return std::nullopt;
}

std::string_view to_string(Scope s) {
  for (const auto& [scope, name] : k_scopes)
    if (scope == s) return name;
  return "connections";
}

std::vector<std::string> scope_names(unsigned mask) {
  std::vector<std::string> out;
  for (const auto& [scope, name] : k_scopes)
    if (has_scope(mask, scope)) out.emplace_back(name);
  return out;
}

std::string_view to_string(ConnectionStatus s) {
  for (const auto& [st, name] : k_statuses)
    if (st == s) return name;
  return "pending";
}

std::optional<ConnectionStatus> parse_connection_status(std::string_view s) {
  for (const auto& [st, name] : k_statuses)
    if (name == s) return st;
  return std::nullopt;
}

}  // namespace alumia
