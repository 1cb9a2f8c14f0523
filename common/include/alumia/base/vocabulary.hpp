#pragma once
// The words of the domain that several areas share: a connection's auth type, a webhook endpoint's
// status, a relay job's state and a webhook provider. Each is an enum with one string table
// (vocabulary.cpp): to_string gives the text of the wire and of the store, parse_* reads it back and
// refuses anything else. They live in base because the catalog and the store (both layer 2) use them.
// Which providers have a verifier is the verifier registry's business (alumia/webhooks/webhooks.hpp).
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace alumia {

enum class AuthType { oauth, api_key, none };
enum class EndpointStatus { active, disabled };
enum class JobState { queued, running, succeeded, failed, dead };
// Order is the order of PROVIDERS.md.
enum class Provider { telegram, slack, discord, whatsapp, twilio, gmail, github, linear, stripe };

std::string_view to_string(AuthType v);
std::string_view to_string(EndpointStatus v);
std::string_view to_string(JobState v);
std::string_view to_string(Provider v);

std::optional<AuthType> parse_auth_type(std::string_view s);
std::optional<EndpointStatus> parse_endpoint_status(std::string_view s);
std::optional<JobState> parse_job_state(std::string_view s);
std::optional<Provider> parse_provider(std::string_view s);

// Every value, in table order.
std::span<const AuthType> auth_types();
std::span<const EndpointStatus> endpoint_statuses();
std::span<const JobState> job_states();
std::span<const Provider> all_providers();

// "queued, running, succeeded, failed, dead" (with `last_separator` before the last name).
std::string job_state_list(std::string_view last_separator = ", ");
std::string endpoint_status_list(std::string_view last_separator = ", ");

// A job still to be delivered: the relay claims it when due (queued, or failed awaiting a retry).
inline bool is_pending(JobState s) { return s == JobState::queued || s == JobState::failed; }

}  // namespace alumia
