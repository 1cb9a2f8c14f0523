#pragma once
// The connector catalog (SPEC §4): typed view of catalog/connectors.json plus the user's
// connectors.d/*.json overrides, validated strictly at start. The schema is documented in
// catalog/README.md; every field below names its JSON key.
#include <alumia/base/error.hpp>
#include <alumia/base/vocabulary.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia {

enum class Availability { available, coming_soon };
enum class ClientAuth { basic, body };  // RFC 6749 §2.3.1: never both
enum class BodyFormat { form, json };   // token request body encoding
enum class RevocationStyle {
  none,     // no endpoint: destroy locally and tell the user (Microsoft, Atlassian)
  rfc7009,  // POST token=…&token_type_hint=…, client auth as clientAuth; 200 = success
  github,   // DELETE {url with client_id}, Basic client_id:secret, JSON {"access_token":…}; 204
  slack,    // POST, the doomed token as Bearer; success needs "ok":true
  notion,   // POST, Basic client auth, JSON {"token":…}
  bearer,   // POST, the doomed token as Bearer, no body; 2xx = success (Dropbox)
};
enum class LabelSource { request, token_response };
enum class WebhookSecretSource { generated, provider, none };

std::string_view to_string(Availability v);
std::string_view to_string(ClientAuth v);
std::string_view to_string(BodyFormat v);
std::string_view to_string(RevocationStyle v);
std::string_view to_string(LabelSource v);
std::string_view to_string(WebhookSecretSource v);

using StringMap = std::map<std::string, std::string, std::less<>>;

struct UrlParam {  // "accountPickerParam" {name, value}; entries of "extraAuthorizeParams"
  std::string name;
  std::string value;
};

struct ApiBase {            // "apiBase"
  std::string default_url;  // "default": https, or http on a loopback literal
  std::string env_var;      // "envVar": ALUMIA_* variable that overrides it; may be empty
};

// How a label is read from a JSON document: the first non-empty string (or number) among the
// pointers, or all non-empty ones joined with `join` when it is set; then `prefix` is prepended.
struct LabelExtract {
  std::vector<std::string> json_pointers;  // "jsonPointers", RFC 6901, e.g. "/result/username"
  std::string join;                        // "join"
  std::string prefix;                      // "prefix", e.g. "@"
};

struct AccountLabelSource {                   // "oauth.accountLabel"
  LabelSource source = LabelSource::request;  // "source": "request" | "tokenResponse"
  // request only: called with the new access token as Bearer plus the connector's apiHeaders.
  std::string method = "GET";          // "method": GET | POST
  std::string url;                     // "url"
  StringMap headers;                   // "headers"
  std::optional<nlohmann::json> body;  // "body": sent as application/json (POST)
  LabelExtract extract;
};

struct Revocation {                               // "oauth.revocation"
  RevocationStyle style = RevocationStyle::none;  // "style"
  std::string url;                                // "url"; may hold {client_id}; empty when style is none
  std::string method;                             // "method"; defaults per style (DELETE for github, else POST)
};

struct TokenResponseQuirks {      // "oauth.tokenResponse"
  bool form_encoded = false;      // "formEncoded": body may be form-encoded (GitHub)
  bool errors_in_200 = false;     // "errorsIn200": errors arrive with HTTP 200 (GitHub, Slack)
  std::string ok_field;           // "okField": boolean that must be true (Slack "ok")
  std::string nested_user_token;  // "nestedUserToken": object holding the user token (Slack "authed_user")
  bool scope_array = false;       // "scopeArray": "scope" is a JSON array (Linear)
  std::string scope_separator;    // "scopeSeparator" of the returned scope; empty = oauth.scopeSeparator
};

struct OAuthConfig {                                   // "oauth"
  std::string authorize_url;                           // "authorizeUrl"
  std::string token_url;                               // "tokenUrl"
  Revocation revocation;                               // "revocation"
  std::vector<std::string> default_scopes;             // "defaultScopes"
  std::string scope_separator = " ";                   // "scopeSeparator": " " or ","
  bool pkce = true;                                    // "pkce": S256 on every flow unless false
  ClientAuth client_auth = ClientAuth::body;           // "clientAuth"
  BodyFormat token_request_format = BodyFormat::form;  // "tokenRequestFormat"
  std::vector<UrlParam> extra_authorize_params;        // "extraAuthorizeParams" (sorted by name)
  std::optional<UrlParam> account_picker;              // "accountPickerParam"
  TokenResponseQuirks token_response;                  // "tokenResponse"
  std::string issuer;                                  // "issuer" (RFC 9207); empty = unknown
  bool iss_required = false;                           // "issRequired": a missing iss aborts
  std::optional<AccountLabelSource> account_label;     // "accountLabel"
  // "responseType" and "grantType" may be written but only "code" / "authorization_code" pass.
};

struct CredentialField {                   // "credentialFields[]"
  std::string key;                         // "key": ^[a-z][a-z0-9_]{0,63}$
  std::string label;                       // "label"
  bool required = true;                    // "required"
  bool secret = false;                     // "secret": prompt without echo, never shown again
  std::optional<std::string> pattern;      // "pattern": ECMAScript regex, whole value must match
  std::optional<std::string> placeholder;  // "placeholder"
};

struct BasicAuthTemplate {  // "liveCheck.basicAuth"
  std::string username;     // "username"
  std::string password;     // "password"
};

// Optional check of submitted api_key credentials. url, headers and basicAuth are templates: {apiBase}
// and {<credential key>} are substituted (credential values percent-encoded by the caller where they land
// in a URL). Success: HTTP 2xx and, when successPointer is set, the value there equals successValue.
struct LiveCheck {                              // "liveCheck"
  std::string method = "GET";                   // "method": GET | POST
  std::string url;                              // "url"
  StringMap headers;                            // "headers"
  std::optional<BasicAuthTemplate> basic_auth;  // "basicAuth"
  std::string success_pointer;                  // "successPointer"
  nlohmann::json success_value = true;          // "successValue" (default true)
  LabelExtract account_label;                   // "accountLabel"
};

struct WebhookInfo {             // "webhook"
  Provider provider{};           // "provider": a verifier name from PROVIDERS.md
  std::string scheme;            // "scheme": one-line human summary of the verification
  std::string signature_header;  // "signatureHeader"
  WebhookSecretSource secret_source = WebhookSecretSource::provider;  // "secretSource"
  std::string secret_label;                  // "secretLabel": where the user finds it / what we generate
  std::vector<std::string> endpoint_extras;  // "endpointExtras": e.g. verifyToken, audience, jwksUrl
};

struct Tool {        // "tools[]"
  std::string name;  // "<slug>.<operation>"
  std::string description;
};

struct Connector {
  std::string slug;                                     // "slug": ^[a-z0-9][a-z0-9-]{0,62}$
  std::string name;                                     // "name"
  std::string description;                              // "description"
  std::string category;                                 // "category": ^[a-z][a-z0-9-]*$
  AuthType auth_type = AuthType::none;                  // "authType"
  Availability availability = Availability::available;  // "availability"
  std::string availability_reason;                      // "availabilityReason" (required when coming_soon)
  std::optional<ApiBase> api_base;                      // "apiBase"
  StringMap api_headers;                                // "apiHeaders": sent on every API call for this connector
  std::vector<Tool> tools;                              // "tools"
  std::optional<OAuthConfig> oauth;                     // "oauth": required iff authType is oauth
  std::vector<CredentialField> credential_fields;       // "credentialFields": required iff api_key
  std::optional<LiveCheck> live_check;                  // "liveCheck": api_key only
  std::optional<WebhookInfo> webhook;                   // "webhook"
  std::vector<std::string> commands;                    // "commands": e.g. setup-webhook
  std::string source;  // where the effective definition came from (built-in or a file path)

  const CredentialField* find_field(std::string_view key) const;
};

class Catalog {
 public:
  Catalog() = default;
  explicit Catalog(std::vector<Connector> connectors);  // sorts by slug

  const Connector* find(std::string_view slug) const;
  // Every connector, ordered by slug.
  const std::vector<Connector>& all() const { return m_connectors; }

 private:
  std::vector<Connector> m_connectors;
};

// Parses the built-in catalog, then merges every *.json in connectors_d (sorted by file name; dot
// files ignored; a missing directory or an empty path means no overrides). A file holds one connector
// object, an array of them, or {"connectors":[…]}. A known slug is overridden field by field with
// JSON Merge Patch (RFC 7386: objects merge, arrays and scalars replace, null deletes), or wholesale
// when the object says "replace": true; a new slug adds a connector. The merged result is validated
// strictly; the error (VALIDATION_ERROR) names the file and the field path, one problem per line.
Result<Catalog> load_catalog(std::string_view builtin_json, const std::filesystem::path& connectors_d);
// Same, with the catalog compiled into the binary.
Result<Catalog> load_catalog(const std::filesystem::path& connectors_d);

struct OAuthClientEnvNames {
  std::string client_id;      // ALUMIA_<SLUG>_CLIENT_ID
  std::string client_secret;  // ALUMIA_<SLUG>_CLIENT_SECRET
};
// Slug upper-cased, '-' → '_': microsoft-outlook → ALUMIA_MICROSOFT_OUTLOOK_CLIENT_ID.
OAuthClientEnvNames oauth_client_env_names(std::string_view slug);

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The connector's API base: the env override when set and non-empty (checked: https, or http on a
// loopback literal), else the catalog default. VALIDATION_ERROR names the variable; BAD_REQUEST
// when the connector has no apiBase.
Result<std::string> resolve_api_base(const Connector& connector, const EnvLookup& env);

// Replaces each {name} with values[name]; unknown placeholders are left as written.
std::string expand_template(std::string_view text, const StringMap& values);

// Whole-value match of the field's pattern (true when it has none).
bool credential_value_matches(const CredentialField& field, std::string_view value);

// extraAuthorizeParams plus, with select_account, the account-picker param. When both name the same
// parameter the values are space-joined without duplicates (Google: prompt=consent select_account).
std::vector<UrlParam> authorize_extra_params(const OAuthConfig& oauth, bool select_account);

// Reads a label per `extract` from a JSON document; empty when nothing matches.
std::string extract_label(const LabelExtract& extract, const nlohmann::json& document);

}  // namespace alumia
