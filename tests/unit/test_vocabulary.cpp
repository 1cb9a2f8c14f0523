// The string tables of the domain's words (alumia/base/vocabulary.hpp): the text the wire and the
// store use for every value, each value read back, and anything else refused.
#include <alumia/base/vocabulary.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace alumia;

// Written out from SPEC §5 and §7 (and the store's columns), not from vocabulary.cpp.
const std::vector<std::pair<AuthType, std::string>> k_auth_types{
    {AuthType::oauth, "oauth"}, {AuthType::api_key, "api_key"}, {AuthType::none, "none"}};
const std::vector<std::pair<EndpointStatus, std::string>> k_endpoint_statuses{{EndpointStatus::active, "active"},
                                                                              {EndpointStatus::disabled, "disabled"}};
const std::vector<std::pair<JobState, std::string>> k_job_states{{JobState::queued, "queued"},
                                                                 {JobState::running, "running"},
                                                                 {JobState::succeeded, "succeeded"},
                                                                 {JobState::failed, "failed"},
                                                                 {JobState::dead, "dead"}};
const std::vector<std::pair<Provider, std::string>> k_providers{
    {Provider::telegram, "telegram"}, {Provider::slack, "slack"},   {Provider::discord, "discord"},
    {Provider::whatsapp, "whatsapp"}, {Provider::twilio, "twilio"}, {Provider::gmail, "gmail"},
    {Provider::github, "github"},     {Provider::linear, "linear"}, {Provider::stripe, "stripe"}};

// Near misses of real names: case, padding, a prefix, an empty string, another table's word.
const std::vector<std::string> k_unknown{
    "",       " ",   "Active", "QUEUED", "queued ", " oauth",  "api-key", "apikey",
    "GitHub", "git", "svix",   "done",   "enabled", "pending", "oauth2",  std::string("dead\0", 5)};

template <class E, class Parse>
void check_table(const std::vector<std::pair<E, std::string>>& expected, std::span<const E> all, Parse parse) {
  REQUIRE(all.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [value, text] = expected[i];
    CAPTURE(text);
    CHECK(all[i] == value);  // every value, in table order
    CHECK(to_string(value) == text);
    const auto back = parse(text);
    REQUIRE(back);
    CHECK(*back == value);
  }
  std::set<std::string_view> names;
  for (const E v : all) names.insert(to_string(v));
  CHECK(names.size() == all.size());  // no two values share a word
  for (const auto& text : k_unknown) {
    CAPTURE(text);
    bool known = false;
    for (const auto& [value, name] : expected) known = known || name == text;
    if (!known) CHECK_FALSE(parse(text));
  }
}

}  // namespace

TEST_CASE("auth types: one table, round trip, unknown refused", "[unit][vocabulary]") {
  check_table(k_auth_types, auth_types(), parse_auth_type);
}

TEST_CASE("endpoint statuses: one table, round trip, unknown refused", "[unit][vocabulary]") {
  check_table(k_endpoint_statuses, endpoint_statuses(), parse_endpoint_status);
  CHECK(endpoint_status_list(" or ") == "active or disabled");
}

TEST_CASE("job states: one table, round trip, unknown refused", "[unit][vocabulary]") {
  check_table(k_job_states, job_states(), parse_job_state);
  CHECK(job_state_list() == "queued, running, succeeded, failed, dead");
  std::vector<JobState> pending;
  for (const JobState s : job_states())
    if (is_pending(s)) pending.push_back(s);
  CHECK(pending == std::vector<JobState>{JobState::queued, JobState::failed});
}

TEST_CASE("providers: one table, round trip, unknown refused, each with its verifier", "[unit][vocabulary]") {
  check_table(k_providers, all_providers(), parse_provider);
  // The registry lists exactly these, in the same order, and maps each to its own verifier.
  const auto names = webhooks::providers();
  REQUIRE(names.size() == all_providers().size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Provider p = all_providers()[i];
    CAPTURE(to_string(p));
    CHECK(names[i] == to_string(p));
    CHECK(webhooks::find_verifier(p).provider() == to_string(p));
    CHECK(webhooks::find_verifier(to_string(p)) == &webhooks::find_verifier(p));
  }
  for (const auto& text : k_unknown) CHECK(webhooks::find_verifier(text) == nullptr);
}
