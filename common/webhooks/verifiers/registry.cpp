// The one table of webhook verifiers (STYLE: one table per dispatcher).
#include "verifiers/detail.hpp"

#include <array>

namespace alumia::webhooks {

namespace {

struct Entry {
  std::string_view name;
  const Verifier& (*get)();
};

// Order is the order of PROVIDERS.md.
constexpr std::array<Entry, 9> k_table{{
    {"telegram", &detail::telegram_verifier},
    {"slack", &detail::slack_verifier},
    {"discord", &detail::discord_verifier},
    {"whatsapp", &detail::whatsapp_verifier},
    {"twilio", &detail::twilio_verifier},
    {"gmail", &detail::gmail_verifier},
    {"github", &detail::github_verifier},
    {"linear", &detail::linear_verifier},
    {"stripe", &detail::stripe_verifier},
}};

constexpr std::array<std::string_view, k_table.size()> k_names = [] {
  std::array<std::string_view, k_table.size()> names{};
  for (std::size_t i = 0; i < k_table.size(); ++i) names[i] = k_table[i].name;
  return names;
}();

}  // namespace

const Verifier* find_verifier(std::string_view provider) {
  for (const auto& entry : k_table)
    if (entry.name == provider) return &entry.get();
  return nullptr;
}

std::span<const std::string_view> providers() { return k_names; }

}  // namespace alumia::webhooks
