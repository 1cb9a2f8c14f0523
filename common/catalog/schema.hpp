#pragma once
// The catalog schema (private to common/catalog): reads one connector object into a validated
// Connector, reporting every problem at its field path (catalog/README.md documents the schema).
// schema.cpp holds the connector and its api_key and webhook parts, schema_oauth.cpp the oauth block.
#include "json_reader.hpp"

#include <alumia/catalog/catalog.hpp>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

namespace alumia::catalog_detail {

using alumia::StringMap;

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

template <class E, std::size_t N>
std::string_view name_of(const std::array<std::pair<std::string_view, E>, N>& table, E value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  return "?";
}

// The one string table of each catalog enum: what the JSON says ↔ the value (to_string reads them too).
inline constexpr std::array<std::pair<std::string_view, Availability>, 2> k_availabilities = {
    {{"available", Availability::available}, {"coming_soon", Availability::coming_soon}}};
inline constexpr std::array<std::pair<std::string_view, ClientAuth>, 2> k_client_auths = {
    {{"basic", ClientAuth::basic}, {"body", ClientAuth::body}}};
inline constexpr std::array<std::pair<std::string_view, BodyFormat>, 2> k_body_formats = {
    {{"form", BodyFormat::form}, {"json", BodyFormat::json}}};
inline constexpr std::array<std::pair<std::string_view, RevocationStyle>, 6> k_revocation_styles = {
    {{"none", RevocationStyle::none},
     {"rfc7009", RevocationStyle::rfc7009},
     {"github", RevocationStyle::github},
     {"slack", RevocationStyle::slack},
     {"notion", RevocationStyle::notion},
     {"bearer", RevocationStyle::bearer}}};
inline constexpr std::array<std::pair<std::string_view, LabelSource>, 2> k_label_sources = {
    {{"request", LabelSource::request}, {"tokenResponse", LabelSource::token_response}}};
inline constexpr std::array<std::pair<std::string_view, WebhookSecretSource>, 3> k_secret_sources = {
    {{"generated", WebhookSecretSource::generated},
     {"provider", WebhookSecretSource::provider},
     {"none", WebhookSecretSource::none}}};

bool valid_slug(std::string_view s);  // ^[a-z0-9][a-z0-9-]{0,62}$

// Validates an endpoint URL (possibly a template): placeholders among `allowed`, parses, https or
// http on a loopback literal (OAUTH.md §1.1 item 16), no credentials, no fragment. `api_base`
// stands in for {apiBase}.
void check_url(Diag& diag, const std::string& path, const std::string& text, const std::set<std::string>& allowed,
               const std::string& api_base = {});
void check_headers(Diag& diag, const std::string& path, const StringMap& headers);
LabelExtract read_label_extract(const Obj& o);
// The method at `key`, one of `allowed`; `fallback` when absent (or wrong, after reporting it).
std::string read_http_method(const Obj& o, std::string_view key, std::initializer_list<std::string_view> allowed,
                             std::string fallback);

// The "oauth" block (schema_oauth.cpp); `api_base` is the connector's default API base.
std::optional<OAuthConfig> read_oauth(const Obj& o, const std::string& api_base);
// One connector object, merged already; every problem goes to o.diag().
Connector read_connector(const Obj& o);

}  // namespace alumia::catalog_detail
