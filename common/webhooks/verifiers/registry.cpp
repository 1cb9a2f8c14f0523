// The one table of webhook verifiers (STYLE: one table per dispatcher).
#include "verifiers/detail.hpp"

#include <array>

namespace alumia::webhooks {

namespace {

struct Entry {
  Provider provider;
  const Verifier& (*get)();
  bool daemon_generates_secret;  // we choose the secret; the others issue theirs (Linear in its settings, §8)
};

// Order is the order of PROVIDERS.md.
constexpr std::array<Entry, 9> k_table{{
    {Provider::telegram, &detail::telegram_verifier, true},
    {Provider::slack, &detail::slack_verifier, false},
    {Provider::discord, &detail::discord_verifier, false},
    {Provider::whatsapp, &detail::whatsapp_verifier, false},
    {Provider::twilio, &detail::twilio_verifier, false},
    {Provider::gmail, &detail::gmail_verifier, false},
    {Provider::github, &detail::github_verifier, true},
    {Provider::linear, &detail::linear_verifier, false},
    {Provider::stripe, &detail::stripe_verifier, false},
}};

// Every Provider has its row, in the order of the enum (tests/unit/test_webhook_registry.cpp).
constexpr bool k_complete = [] {
  for (std::size_t i = 0; i < k_table.size(); ++i)
    if (k_table[i].provider != static_cast<Provider>(i)) return false;
  return static_cast<std::size_t>(Provider::stripe) + 1 == k_table.size();
}();
static_assert(k_complete, "the verifier table lists each Provider once, in enum order");

const Entry& entry_of(Provider provider) { return k_table[static_cast<std::size_t>(provider)]; }

const std::array<std::string_view, k_table.size()>& names() {
  static const auto k_names = [] {
    std::array<std::string_view, k_table.size()> out{};
    for (std::size_t i = 0; i < k_table.size(); ++i) out[i] = to_string(k_table[i].provider);
    return out;
  }();
  return k_names;
}

}  // namespace

const Verifier& find_verifier(Provider provider) { return entry_of(provider).get(); }

const Verifier* find_verifier(std::string_view provider) {
  const auto p = parse_provider(provider);
  return p ? &find_verifier(*p) : nullptr;
}

std::span<const std::string_view> providers() { return names(); }

std::string provider_list(std::string_view last_separator) {
  const auto& n = names();
  std::string out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (i > 0) out += i + 1 == n.size() ? last_separator : std::string_view(", ");
    out += n[i];
  }
  return out;
}

bool daemon_generates_secret(Provider provider) { return entry_of(provider).daemon_generates_secret; }

}  // namespace alumia::webhooks
