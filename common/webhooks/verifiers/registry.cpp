// The one table of webhook verifiers (STYLE: one table per dispatcher).
#include "verifiers/detail.hpp"

#include <array>

namespace alumia::webhooks {

namespace {

struct Entry {
  std::string_view name;
  const Verifier& (*get)();
  bool daemon_generates_secret;  // we choose the secret; the others issue theirs (Linear in its settings, §8)
};

// Order is the order of PROVIDERS.md.
constexpr std::array<Entry, 9> k_table{{
    {"telegram", &detail::telegram_verifier, true},
    {"slack", &detail::slack_verifier, false},
    {"discord", &detail::discord_verifier, false},
    {"whatsapp", &detail::whatsapp_verifier, false},
    {"twilio", &detail::twilio_verifier, false},
    {"gmail", &detail::gmail_verifier, false},
    {"github", &detail::github_verifier, true},
    {"linear", &detail::linear_verifier, false},
    {"stripe", &detail::stripe_verifier, false},
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

std::string provider_list(std::string_view last_separator) {
  std::string out;
  for (std::size_t i = 0; i < k_names.size(); ++i) {
    if (i > 0) out += i + 1 == k_names.size() ? last_separator : std::string_view(", ");
    out += k_names[i];
  }
  return out;
}

bool daemon_generates_secret(std::string_view provider) {
  for (const auto& entry : k_table)
    if (entry.name == provider) return entry.daemon_generates_secret;
  return false;
}

}  // namespace alumia::webhooks
