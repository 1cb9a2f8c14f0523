#include <alumia/base/vocabulary.hpp>

#include <array>
#include <utility>

namespace alumia {
namespace {

template <class E>
using Table = std::span<const std::pair<E, std::string_view>>;

constexpr std::array<std::pair<AuthType, std::string_view>, 3> k_auth_types{{
    {AuthType::oauth, "oauth"},
    {AuthType::api_key, "api_key"},
    {AuthType::none, "none"},
}};
constexpr std::array<std::pair<EndpointStatus, std::string_view>, 2> k_endpoint_statuses{{
    {EndpointStatus::active, "active"},
    {EndpointStatus::disabled, "disabled"},
}};
constexpr std::array<std::pair<JobState, std::string_view>, 5> k_job_states{{
    {JobState::queued, "queued"},
    {JobState::running, "running"},
    {JobState::succeeded, "succeeded"},
    {JobState::failed, "failed"},
    {JobState::dead, "dead"},
}};
constexpr std::array<std::pair<Provider, std::string_view>, 9> k_providers{{
    {Provider::telegram, "telegram"},
    {Provider::slack, "slack"},
    {Provider::discord, "discord"},
    {Provider::whatsapp, "whatsapp"},
    {Provider::twilio, "twilio"},
    {Provider::gmail, "gmail"},
    {Provider::github, "github"},
    {Provider::linear, "linear"},
    {Provider::stripe, "stripe"},
}};

template <class E, std::size_t N>
constexpr std::array<E, N> values_of(const std::array<std::pair<E, std::string_view>, N>& table) {
  std::array<E, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = table[i].first;
  return out;
}

constexpr auto k_auth_type_values = values_of(k_auth_types);
constexpr auto k_endpoint_status_values = values_of(k_endpoint_statuses);
constexpr auto k_job_state_values = values_of(k_job_states);
constexpr auto k_provider_values = values_of(k_providers);

template <class E>
std::string_view name_in(Table<E> table, E v) {
  for (const auto& [value, name] : table)
    if (value == v) return name;
  return "?";  // unreachable: every enumerator has a row (tests/unit/test_vocabulary.cpp)
}

template <class E>
std::optional<E> parse_in(Table<E> table, std::string_view s) {
  for (const auto& [value, name] : table)
    if (name == s) return value;
  return std::nullopt;
}

template <class E>
std::string list_of(Table<E> table, std::string_view last_separator) {
  std::string out;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (i > 0) out += i + 1 == table.size() ? last_separator : std::string_view(", ");
    out += table[i].second;
  }
  return out;
}

}  // namespace

std::string_view to_string(AuthType v) { return name_in<AuthType>(k_auth_types, v); }
std::string_view to_string(EndpointStatus v) { return name_in<EndpointStatus>(k_endpoint_statuses, v); }
std::string_view to_string(JobState v) { return name_in<JobState>(k_job_states, v); }
std::string_view to_string(Provider v) { return name_in<Provider>(k_providers, v); }

std::optional<AuthType> parse_auth_type(std::string_view s) { return parse_in<AuthType>(k_auth_types, s); }
std::optional<EndpointStatus> parse_endpoint_status(std::string_view s) {
  return parse_in<EndpointStatus>(k_endpoint_statuses, s);
}
std::optional<JobState> parse_job_state(std::string_view s) { return parse_in<JobState>(k_job_states, s); }
std::optional<Provider> parse_provider(std::string_view s) { return parse_in<Provider>(k_providers, s); }

std::span<const AuthType> auth_types() { return k_auth_type_values; }
std::span<const EndpointStatus> endpoint_statuses() { return k_endpoint_status_values; }
std::span<const JobState> job_states() { return k_job_state_values; }
std::span<const Provider> all_providers() { return k_provider_values; }

std::string job_state_list(std::string_view last_separator) { return list_of<JobState>(k_job_states, last_separator); }
std::string endpoint_status_list(std::string_view last_separator) {
  return list_of<EndpointStatus>(k_endpoint_statuses, last_separator);
}

}  // namespace alumia
