#include <alumia/base/fs.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/net/url.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

namespace alumia::embedded {
extern const std::string_view catalog_json;
}

namespace alumia {
namespace {

using nlohmann::json;

constexpr std::string_view k_builtin_name = "built-in catalog (catalog/connectors.json)";
constexpr std::uintmax_t k_max_file_bytes = 1024 * 1024;
constexpr std::size_t k_max_reported_errors = 25;

// One verifier per provider exists in the daemon (PROVIDERS.md §10); nothing else can be named.
constexpr std::array<std::string_view, 9> k_webhook_providers = {"telegram", "slack",  "discord", "whatsapp", "twilio",
                                                                 "gmail",    "github", "linear",  "stripe"};
constexpr std::array<std::string_view, 1> k_commands = {"setup-webhook"};
constexpr std::array<std::string_view, 4> k_endpoint_extras = {"verifyToken", "audience", "jwksUrl",
                                                               "serviceAccountEmail"};
// The flow sets these itself; a catalog must not (OAUTH.md §1.1 items 1, 2, 5, 8).
constexpr std::array<std::string_view, 7> k_reserved_authorize_params = {
    "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

template <std::size_t N>
std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto v : set) out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_upper_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool valid_slug(std::string_view s) {  // ^[a-z0-9][a-z0-9-]{0,62}$
  if (s.empty() || s.size() > 63 || !is_lower_alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool valid_field_key(std::string_view s) {  // ^[a-z][a-z0-9_]{0,63}$
  if (s.empty() || s.size() > 64 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '_'; });
}

bool valid_category(std::string_view s) {  // ^[a-z][a-z0-9-]*$
  if (s.empty() || s.size() > 64 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool valid_env_var(std::string_view s) {  // ^ALUMIA_[A-Z0-9_]+$
  if (s.size() <= 7 || s.substr(0, 7) != "ALUMIA_") return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_upper_alnum(c) || c == '_'; });
}

bool valid_header_name(std::string_view s) {  // RFC 9110 token
  constexpr std::string_view k_extra = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           k_extra.find(c) != std::string_view::npos;
  });
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string child(std::string_view base, std::string_view key) {
  if (base.empty()) return std::string(key);
  return std::string(base) + "." + std::string(key);
}

std::string element(std::string_view base, std::size_t i) { return std::string(base) + "[" + std::to_string(i) + "]"; }

// Collects the problems of one file, each as "<file>: <field path>: <message>".
class Diag {
 public:
  explicit Diag(std::string file) : m_file(std::move(file)) {}

  void error(std::string_view path, std::string_view message) {
    std::string line = m_file + ": ";
    if (!path.empty()) line += std::string(path) + ": ";
    line += message;
    m_errors.push_back(std::move(line));
  }
  bool ok() const { return m_errors.empty(); }
  std::size_t count() const { return m_errors.size(); }
  const std::string& file() const { return m_file; }
  std::vector<std::string> take() { return std::move(m_errors); }

 private:
  std::string m_file;
  std::vector<std::string> m_errors;
};

// A JSON object being read at a field path. Absent and null fields are treated alike (null is how a
// merge patch deletes a field).
class Obj {
 public:
  Obj(Diag& diag, const json& value, std::string path) : m_diag(&diag), m_json(&value), m_path(std::move(path)) {}

  Diag& diag() const { return *m_diag; }
  const std::string& path() const { return m_path; }
  std::string at(std::string_view key) const { return child(m_path, key); }
  void error(std::string_view key, std::string_view message) const { m_diag->error(at(key), message); }

  void allow(std::initializer_list<std::string_view> keys) const {
    for (const auto& [key, value] : m_json->items()) {
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
      std::string allowed;
      for (auto k : keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
      m_diag->error(at(key), "unknown field (allowed here: " + allowed + ")");
    }
  }

  const json* get(std::string_view key) const {
    auto it = m_json->find(std::string(key));
    if (it == m_json->end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(std::string_view key) const { return get(key) != nullptr; }

  std::optional<std::string> str(std::string_view key, bool required) const {
    const json* v = get(key);
    if (v == nullptr) {
      if (required) error(key, "required field is missing");
      return std::nullopt;
    }
    if (!v->is_string()) {
      error(key, std::string("must be a string, not ") + v->type_name());
      return std::nullopt;
    }
    auto s = v->get<std::string>();
    if (s.empty()) {
      error(key, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  std::optional<bool> boolean(std::string_view key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      error(key, std::string("must be true or false, not ") + v->type_name());
      return std::nullopt;
    }
    return v->get<bool>();
  }

  std::optional<std::vector<std::string>> strings(std::string_view key, bool required) const {
    const json* v = get(key);
    if (v == nullptr) {
      if (required) error(key, "required field is missing");
      return std::nullopt;
    }
    if (!v->is_array()) {
      error(key, std::string("must be an array of strings, not ") + v->type_name());
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string() || e.get_ref<const std::string&>().empty()) {
        m_diag->error(element(at(key), i), "must be a non-empty string");
        continue;
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  std::optional<StringMap> string_map(std::string_view key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_object()) {
      error(key, std::string("must be an object of strings, not ") + v->type_name());
      return std::nullopt;
    }
    StringMap out;
    for (const auto& [k, e] : v->items()) {
      if (!e.is_string()) {
        m_diag->error(child(at(key), k), std::string("must be a string, not ") + e.type_name());
        continue;
      }
      out.emplace(k, e.get<std::string>());
    }
    return out;
  }

  std::optional<Obj> object(std::string_view key, bool required) const {
    const json* v = get(key);
    if (v == nullptr) {
      if (required) error(key, "required field is missing");
      return std::nullopt;
    }
    if (!v->is_object()) {
      error(key, std::string("must be an object, not ") + v->type_name());
      return std::nullopt;
    }
    return Obj(*m_diag, *v, at(key));
  }

  const json* array(std::string_view key, bool required) const {
    const json* v = get(key);
    if (v == nullptr) {
      if (required) error(key, "required field is missing");
      return nullptr;
    }
    if (!v->is_array()) {
      error(key, std::string("must be an array, not ") + v->type_name());
      return nullptr;
    }
    return v;
  }

  template <class E, std::size_t N>
  std::optional<E> enumeration(std::string_view key, const std::array<std::pair<std::string_view, E>, N>& table,
                               bool required) const {
    auto s = str(key, required);
    if (!s) return std::nullopt;
    for (const auto& [name, value] : table)
      if (name == *s) return value;
    std::string allowed;
    for (const auto& [name, value] : table) allowed += (allowed.empty() ? "" : ", ") + in_quotes(name);
    error(key, in_quotes(*s) + " is not one of " + allowed);
    return std::nullopt;
  }

 private:
  Diag* m_diag;
  const json* m_json;
  std::string m_path;
};

constexpr std::array<std::pair<std::string_view, AuthType>, 3> k_auth_types = {
    {{"oauth", AuthType::oauth}, {"api_key", AuthType::api_key}, {"none", AuthType::none}}};
constexpr std::array<std::pair<std::string_view, Availability>, 2> k_availabilities = {
    {{"available", Availability::available}, {"coming_soon", Availability::coming_soon}}};
constexpr std::array<std::pair<std::string_view, ClientAuth>, 2> k_client_auths = {
    {{"basic", ClientAuth::basic}, {"body", ClientAuth::body}}};
constexpr std::array<std::pair<std::string_view, BodyFormat>, 2> k_body_formats = {
    {{"form", BodyFormat::form}, {"json", BodyFormat::json}}};
constexpr std::array<std::pair<std::string_view, RevocationStyle>, 6> k_revocation_styles = {
    {{"none", RevocationStyle::none},
     {"rfc7009", RevocationStyle::rfc7009},
     {"github", RevocationStyle::github},
     {"slack", RevocationStyle::slack},
     {"notion", RevocationStyle::notion},
     {"bearer", RevocationStyle::bearer}}};
constexpr std::array<std::pair<std::string_view, LabelSource>, 2> k_label_sources = {
    {{"request", LabelSource::request}, {"tokenResponse", LabelSource::token_response}}};
constexpr std::array<std::pair<std::string_view, WebhookSecretSource>, 3> k_secret_sources = {
    {{"generated", WebhookSecretSource::generated},
     {"provider", WebhookSecretSource::provider},
     {"none", WebhookSecretSource::none}}};

template <class E, std::size_t N>
std::string_view name_of(const std::array<std::pair<std::string_view, E>, N>& table, E value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  return "?";
}

// Every {placeholder} in a template, in order.
std::vector<std::string> placeholders(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t pos = 0;;) {
    auto open = text.find('{', pos);
    if (open == std::string_view::npos) break;
    auto close = text.find('}', open);
    if (close == std::string_view::npos) break;
    out.emplace_back(text.substr(open + 1, close - open - 1));
    pos = close + 1;
  }
  return out;
}

// Validates an endpoint URL (possibly a template): placeholders known, parses, https or http on a
// loopback literal (OAUTH.md §1.1 item 16), no credentials, no fragment.
void check_url(Diag& diag, const std::string& path, const std::string& text, const std::set<std::string>& allowed,
               const std::string& api_base = {}) {
  StringMap values;
  for (const auto& name : placeholders(text)) {
    if (!allowed.contains(name)) {
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + ("{" + a + "}");
      diag.error(path, "unknown placeholder {" + name + "}" + (names.empty() ? "" : " (allowed: " + names + ")"));
      return;
    }
    values[name] = (name == "apiBase") ? api_base : "x";
  }
  if (text.find("{apiBase}") != std::string::npos) {
    if (text.rfind("{apiBase}", 0) != 0) {
      diag.error(path, "{apiBase} may only start the URL");
      return;
    }
    if (api_base.empty()) {
      diag.error(path, "uses {apiBase} but the connector has no apiBase");
      return;
    }
  }
  const std::string expanded = expand_template(text, values);
  auto parsed = url::parse(expanded);
  if (!parsed) {
    diag.error(path, in_quotes(text) + " is not a valid URL: " + parsed.error().message);
    return;
  }
  const bool loopback_literal = (parsed->host_is_ipv4 || parsed->host_is_ipv6) && url::is_loopback_host(*parsed);
  if (parsed->scheme != "https" && !(parsed->scheme == "http" && loopback_literal)) {
    diag.error(path, "must be https (http only for loopback hosts 127.0.0.1 or [::1]), got " + in_quotes(text));
    return;
  }
  if (!parsed->userinfo.empty()) diag.error(path, "must not carry credentials in the URL");
  if (expanded.find('#') != std::string::npos) diag.error(path, "must not have a fragment");
}

void check_headers(Diag& diag, const std::string& path, const StringMap& headers) {
  for (const auto& [name, value] : headers) {
    if (!valid_header_name(name)) diag.error(child(path, name), "is not a valid HTTP header name");
    if (has_control_chars(value)) diag.error(child(path, name), "header value must not contain control characters");
  }
}

void check_json_pointer(Diag& diag, const std::string& path, const std::string& pointer) {
  try {
    [[maybe_unused]] json::json_pointer p(pointer);
  } catch (const json::exception&) {
    diag.error(path, in_quotes(pointer) + " is not a JSON pointer (RFC 6901), e.g. \"/result/username\"");
  }
}

LabelExtract read_label_extract(const Obj& o) {
  LabelExtract out;
  if (auto ptrs = o.strings("jsonPointers", true)) {
    if (ptrs->empty()) o.error("jsonPointers", "must list at least one JSON pointer");
    for (std::size_t i = 0; i < ptrs->size(); ++i)
      check_json_pointer(o.diag(), element(o.at("jsonPointers"), i), (*ptrs)[i]);
    out.json_pointers = std::move(*ptrs);
  }
  if (auto j = o.str("join", false)) out.join = *j;
  if (auto p = o.str("prefix", false)) out.prefix = *p;
  return out;
}

std::string read_http_method(const Obj& o, std::string_view key, std::initializer_list<std::string_view> allowed,
                             std::string fallback) {
  auto m = o.str(key, false);
  if (!m) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *m) == allowed.end()) {
    std::string names;
    for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
    o.error(key, in_quotes(*m) + " is not one of " + names);
    return fallback;
  }
  return *m;
}

void check_authorize_param_name(const Obj& o, const std::string& path, const std::string& name,
                                const std::string& value) {
  if (name == "response_type" && value != "code") {
    o.diag().error(path, "response_type " + in_quotes(value) +
                             " is forbidden: only the authorization code flow is allowed (OAUTH.md §1.1 item 5)");
    return;
  }
  if (contains(k_reserved_authorize_params, name))
    o.diag().error(path, in_quotes(name) + " is set by the flow itself and cannot be configured");
}

std::optional<OAuthConfig> read_oauth(const Obj& o, const std::string& api_base) {
  o.allow({"authorizeUrl", "tokenUrl", "revocation", "defaultScopes", "scopeSeparator", "pkce", "clientAuth",
           "tokenRequestFormat", "extraAuthorizeParams", "accountPickerParam", "tokenResponse", "issuer", "issRequired",
           "accountLabel", "responseType", "grantType"});
  OAuthConfig c;
  Diag& d = o.diag();
  if (auto rt = o.str("responseType", false); rt && *rt != "code")
    o.error("responseType", in_quotes(*rt) +
                                " is forbidden: only \"code\" is allowed; the implicit and hybrid flows are refused "
                                "(OAUTH.md §1.1 item 5)");
  if (auto gt = o.str("grantType", false); gt && *gt != "authorization_code")
    o.error("grantType", in_quotes(*gt) +
                             " is forbidden: only \"authorization_code\" is allowed; the password and other grants "
                             "are refused (OAUTH.md §1.1 item 5)");
  if (auto u = o.str("authorizeUrl", true)) {
    check_url(d, o.at("authorizeUrl"), *u, {});
    c.authorize_url = *u;
    if (auto parsed = url::parse(*u); parsed && !parsed->query.empty()) {
      std::istringstream q(parsed->query);
      for (std::string pair; std::getline(q, pair, '&');) {
        const auto eq = pair.find('=');
        const std::string name = pair.substr(0, eq);
        check_authorize_param_name(o, o.at("authorizeUrl"), name, eq == std::string::npos ? "" : pair.substr(eq + 1));
      }
    }
  }
  if (auto u = o.str("tokenUrl", true)) {
    check_url(d, o.at("tokenUrl"), *u, {});
    c.token_url = *u;
  }
  if (auto r = o.object("revocation", false)) {
    r->allow({"style", "url", "method"});
    c.revocation.style = r->enumeration("style", k_revocation_styles, true).value_or(RevocationStyle::none);
    auto u = r->str("url", false);
    if (c.revocation.style == RevocationStyle::none) {
      if (u) r->error("url", "must be absent when style is \"none\"");
      if (r->has("method")) r->error("method", "must be absent when style is \"none\"");
    } else if (!u) {
      if (!r->has("url"))
        r->error("url", "required field is missing (style " +
                            in_quotes(name_of(k_revocation_styles, c.revocation.style)) + ")");
    } else {
      check_url(d, r->at("url"), *u, {"client_id"});
      c.revocation.url = *u;
    }
    if (c.revocation.style != RevocationStyle::none) {
      const std::string fallback = c.revocation.style == RevocationStyle::github ? "DELETE" : "POST";
      c.revocation.method = read_http_method(*r, "method", {"GET", "POST", "DELETE"}, fallback);
    }
  }
  if (auto sep = o.str("scopeSeparator", false)) {
    if (*sep != " " && *sep != ",") o.error("scopeSeparator", "must be \" \" or \",\"");
    else c.scope_separator = *sep;
  }
  if (auto scopes = o.strings("defaultScopes", false)) {
    for (std::size_t i = 0; i < scopes->size(); ++i) {
      const auto& s = (*scopes)[i];
      if (s.find_first_of(" ,\t\r\n") != std::string::npos)
        d.error(element(o.at("defaultScopes"), i), "a scope must not contain spaces or commas");
    }
    c.default_scopes = std::move(*scopes);
  }
  c.pkce = o.boolean("pkce").value_or(true);
  c.client_auth = o.enumeration("clientAuth", k_client_auths, false).value_or(ClientAuth::body);
  c.token_request_format = o.enumeration("tokenRequestFormat", k_body_formats, false).value_or(BodyFormat::form);
  if (auto extras = o.string_map("extraAuthorizeParams")) {
    for (const auto& [name, value] : *extras) {
      check_authorize_param_name(o, child(o.at("extraAuthorizeParams"), name), name, value);
      c.extra_authorize_params.push_back({name, value});
    }
  }
  if (auto p = o.object("accountPickerParam", false)) {
    p->allow({"name", "value"});
    auto name = p->str("name", true);
    auto value = p->str("value", true);
    if (name && value) {
      check_authorize_param_name(*p, p->at("name"), *name, *value);
      c.account_picker = UrlParam{*name, *value};
    }
  }
  if (auto t = o.object("tokenResponse", false)) {
    t->allow({"formEncoded", "errorsIn200", "okField", "nestedUserToken", "scopeArray", "scopeSeparator"});
    auto& q = c.token_response;
    q.form_encoded = t->boolean("formEncoded").value_or(false);
    q.errors_in_200 = t->boolean("errorsIn200").value_or(false);
    q.ok_field = t->str("okField", false).value_or("");
    q.nested_user_token = t->str("nestedUserToken", false).value_or("");
    q.scope_array = t->boolean("scopeArray").value_or(false);
    if (auto sep = t->str("scopeSeparator", false)) {
      if (*sep != " " && *sep != ",") t->error("scopeSeparator", "must be \" \" or \",\"");
      else q.scope_separator = *sep;
    }
  }
  if (auto iss = o.str("issuer", false)) {
    check_url(d, o.at("issuer"), *iss, {});
    c.issuer = *iss;
  }
  c.iss_required = o.boolean("issRequired").value_or(false);
  if (c.iss_required && !o.has("issuer")) o.error("issRequired", "needs \"issuer\" to compare the iss parameter with");
  if (auto l = o.object("accountLabel", false)) {
    l->allow({"source", "method", "url", "headers", "body", "jsonPointers", "join", "prefix"});
    AccountLabelSource s;
    s.source = l->enumeration("source", k_label_sources, false).value_or(LabelSource::request);
    if (s.source == LabelSource::request) {
      if (auto u = l->str("url", true)) {
        check_url(d, l->at("url"), *u, {"apiBase"}, api_base);
        s.url = expand_template(*u, StringMap{{"apiBase", api_base}});
      }
      s.method = read_http_method(*l, "method", {"GET", "POST"}, "GET");
      if (auto h = l->string_map("headers")) {
        check_headers(d, l->at("headers"), *h);
        s.headers = std::move(*h);
      }
      if (const json* b = l->get("body")) {
        if (s.method != "POST") l->error("body", "only allowed with method \"POST\"");
        s.body = *b;
      }
    } else {
      for (auto k : {"url", "method", "headers", "body"})
        if (l->has(k)) l->error(k, "only allowed when source is \"request\"");
    }
    s.extract = read_label_extract(*l);
    c.account_label = std::move(s);
  }
  return c;
}

std::vector<CredentialField> read_credential_fields(const Obj& o) {
  std::vector<CredentialField> out;
  const json* arr = o.array("credentialFields", true);
  if (arr == nullptr) return out;
  if (arr->empty()) o.error("credentialFields", "an api_key connector needs at least one field");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string path = element(o.at("credentialFields"), i);
    if (!(*arr)[i].is_object()) {
      o.diag().error(path, "must be an object");
      continue;
    }
    Obj f(o.diag(), (*arr)[i], path);
    f.allow({"key", "label", "required", "secret", "pattern", "placeholder"});
    CredentialField cf;
    if (auto k = f.str("key", true)) {
      if (!valid_field_key(*k)) f.error("key", in_quotes(*k) + " must match ^[a-z][a-z0-9_]{0,63}$");
      else if (!seen.insert(*k).second) f.error("key", "duplicate key " + in_quotes(*k));
      cf.key = *k;
    }
    cf.label = f.str("label", true).value_or("");
    cf.required = f.boolean("required").value_or(true);
    cf.secret = f.boolean("secret").value_or(false);
    if (auto p = f.str("pattern", false)) {
      try {
        std::regex re(*p, std::regex::ECMAScript);
        cf.pattern = *p;
      } catch (const std::regex_error& e) {
        f.error("pattern", in_quotes(*p) + " is not a valid regular expression (ECMAScript): " + e.what());
      }
    }
    if (auto p = f.str("placeholder", false)) cf.placeholder = *p;
    out.push_back(std::move(cf));
  }
  return out;
}

std::optional<LiveCheck> read_live_check(const Obj& l, const std::vector<CredentialField>& fields,
                                         const std::string& api_base) {
  l.allow({"method", "url", "headers", "basicAuth", "successPointer", "successValue", "accountLabel"});
  std::set<std::string> allowed{"apiBase"};
  for (const auto& f : fields) allowed.insert(f.key);
  LiveCheck c;
  c.method = read_http_method(l, "method", {"GET", "POST"}, "GET");
  if (auto u = l.str("url", true)) {
    check_url(l.diag(), l.at("url"), *u, allowed, api_base);
    c.url = *u;
  }
  auto check_template = [&](const std::string& path, const std::string& text) {
    for (const auto& name : placeholders(text))
      if (!allowed.contains(name))
        l.diag().error(path, "unknown placeholder {" + name + "} (use {apiBase} or a credential field key)");
  };
  if (auto h = l.string_map("headers")) {
    check_headers(l.diag(), l.at("headers"), *h);
    for (const auto& [name, value] : *h) check_template(child(l.at("headers"), name), value);
    c.headers = std::move(*h);
  }
  if (auto b = l.object("basicAuth", false)) {
    b->allow({"username", "password"});
    BasicAuthTemplate t;
    t.username = b->str("username", true).value_or("");
    t.password = b->str("password", false).value_or("");
    check_template(b->at("username"), t.username);
    check_template(b->at("password"), t.password);
    c.basic_auth = std::move(t);
  }
  if (auto p = l.str("successPointer", false)) {
    check_json_pointer(l.diag(), l.at("successPointer"), *p);
    c.success_pointer = *p;
  }
  if (const json* v = l.get("successValue")) {
    if (c.success_pointer.empty()) l.error("successValue", "needs \"successPointer\"");
    c.success_value = *v;
  }
  if (auto a = l.object("accountLabel", false)) {
    a->allow({"jsonPointers", "join", "prefix"});
    c.account_label = read_label_extract(*a);
  }
  return c;
}

std::optional<WebhookInfo> read_webhook(const Obj& w) {
  w.allow({"provider", "scheme", "signatureHeader", "secretSource", "secretLabel", "endpointExtras"});
  WebhookInfo info;
  if (auto p = w.str("provider", true)) {
    if (!contains(k_webhook_providers, *p))
      w.error("provider", in_quotes(*p) + " has no verifier; known providers: " + list_of(k_webhook_providers));
    info.provider = *p;
  }
  info.scheme = w.str("scheme", true).value_or("");
  if (auto h = w.str("signatureHeader", false)) {
    if (!valid_header_name(*h)) w.error("signatureHeader", in_quotes(*h) + " is not a valid HTTP header name");
    info.signature_header = *h;
  }
  info.secret_source = w.enumeration("secretSource", k_secret_sources, true).value_or(WebhookSecretSource::provider);
  info.secret_label = w.str("secretLabel", false).value_or("");
  if (auto extras = w.strings("endpointExtras", false)) {
    for (std::size_t i = 0; i < extras->size(); ++i)
      if (!contains(k_endpoint_extras, (*extras)[i]))
        w.diag().error(element(w.at("endpointExtras"), i),
                       in_quotes((*extras)[i]) + " is not one of " + list_of(k_endpoint_extras));
    info.endpoint_extras = std::move(*extras);
  }
  return info;
}

Connector read_connector(const Obj& o) {
  o.allow({"slug", "name", "description", "category", "authType", "availability", "availabilityReason", "apiBase",
           "apiHeaders", "tools", "oauth", "credentialFields", "liveCheck", "webhook", "commands"});
  Diag& d = o.diag();
  Connector c;
  c.source = d.file();
  if (auto s = o.str("slug", true)) {
    if (!valid_slug(*s)) o.error("slug", in_quotes(*s) + " must match ^[a-z0-9][a-z0-9-]{0,62}$");
    c.slug = *s;
  }
  c.name = o.str("name", true).value_or("");
  c.description = o.str("description", true).value_or("");
  if (auto cat = o.str("category", true)) {
    if (!valid_category(*cat)) o.error("category", in_quotes(*cat) + " must match ^[a-z][a-z0-9-]*$");
    c.category = *cat;
  }
  auto auth = o.enumeration("authType", k_auth_types, true);
  c.auth_type = auth.value_or(AuthType::none);
  c.availability = o.enumeration("availability", k_availabilities, false).value_or(Availability::available);
  c.availability_reason = o.str("availabilityReason", false).value_or("");
  if (!c.availability_reason.empty() && c.availability == Availability::available)
    o.error("availabilityReason", "only allowed when availability is not \"available\"");

  std::string api_base_default;
  if (auto b = o.object("apiBase", false)) {
    b->allow({"default", "envVar"});
    ApiBase base;
    if (auto u = b->str("default", true)) {
      check_url(d, b->at("default"), *u, {});
      base.default_url = *u;
      while (!base.default_url.empty() && base.default_url.back() == '/') base.default_url.pop_back();
      api_base_default = base.default_url;
    }
    if (auto e = b->str("envVar", false)) {
      if (!valid_env_var(*e)) b->error("envVar", in_quotes(*e) + " must match ^ALUMIA_[A-Z0-9_]+$");
      base.env_var = *e;
    }
    c.api_base = std::move(base);
  }
  if (auto h = o.string_map("apiHeaders")) {
    check_headers(d, o.at("apiHeaders"), *h);
    c.api_headers = std::move(*h);
  }

  if (const json* tools = o.array("tools", false)) {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const std::string path = element(o.at("tools"), i);
      if (!(*tools)[i].is_object()) {
        d.error(path, "must be an object {name, description}");
        continue;
      }
      Obj t(d, (*tools)[i], path);
      t.allow({"name", "description"});
      Tool tool;
      if (auto n = t.str("name", true)) {
        const std::string prefix = c.slug + ".";
        const std::string_view op =
            n->rfind(prefix, 0) == 0 ? std::string_view(*n).substr(prefix.size()) : std::string_view{};
        const bool op_ok = !op.empty() && op[0] >= 'a' && op[0] <= 'z' &&
                           std::all_of(op.begin(), op.end(), [](char ch) { return is_lower_alnum(ch) || ch == '_'; });
        if (!op_ok)
          t.error("name", in_quotes(*n) + " must be " + in_quotes(prefix + "<operation>") +
                              " with operation ^[a-z][a-z0-9_]*$");
        else if (!seen.insert(*n).second) t.error("name", "duplicate tool " + in_quotes(*n));
        tool.name = *n;
      }
      tool.description = t.str("description", true).value_or("");
      c.tools.push_back(std::move(tool));
    }
  }

  if (auto oa = o.object("oauth", false)) {
    if (c.auth_type != AuthType::oauth) o.error("oauth", "only allowed when authType is \"oauth\"");
    else c.oauth = read_oauth(*oa, api_base_default);
  } else if (auth == AuthType::oauth) {
    o.error("oauth", "required field is missing (authType is \"oauth\")");
  }
  if (c.auth_type == AuthType::api_key) {
    c.credential_fields = read_credential_fields(o);
    if (auto l = o.object("liveCheck", false))
      c.live_check = read_live_check(*l, c.credential_fields, api_base_default);
  } else if (auth) {
    for (auto k : {"credentialFields", "liveCheck"})
      if (o.has(k)) o.error(k, "only allowed when authType is \"api_key\"");
  }
  if (auto w = o.object("webhook", false)) c.webhook = read_webhook(*w);
  if (auto cmds = o.strings("commands", false)) {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < cmds->size(); ++i) {
      const auto& cmd = (*cmds)[i];
      const std::string path = element(o.at("commands"), i);
      if (!contains(k_commands, cmd))
        d.error(path, in_quotes(cmd) + " is not a known command (" + list_of(k_commands) + ")");
      else if (!seen.insert(cmd).second) d.error(path, "duplicate command " + in_quotes(cmd));
      else if (cmd == "setup-webhook" && !o.has("webhook"))
        d.error(path, "\"setup-webhook\" needs a \"webhook\" block");
    }
    c.commands = std::move(*cmds);
  }
  return c;
}

// Parses JSON text, refusing duplicate object keys (nlohmann would keep the last one silently).
std::optional<json> parse_json(Diag& diag, std::string_view text) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() && parsed.is_string() &&
             !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    json doc = json::parse(text.begin(), text.end(), callback, true, false);
    if (!duplicate.empty()) {
      diag.error("", "invalid JSON: duplicate key " + in_quotes(duplicate));
      return std::nullopt;
    }
    return doc;
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto pos = what.find("] "); what.rfind("[json.exception", 0) == 0 && pos != std::string::npos)
      what = what.substr(pos + 2);
    diag.error("", "invalid JSON: " + what);
    return std::nullopt;
  }
}

struct Entry {
  json object;
  std::string path;
};

// A document holds {"connectors":[…]}, an array of connectors, or one connector object.
std::vector<Entry> split_document(Diag& diag, const json& doc) {
  std::vector<Entry> out;
  const json* list = nullptr;
  std::string base;
  if (doc.is_object() && doc.contains("connectors")) {
    Obj top(diag, doc, "");
    top.allow({"schemaVersion", "connectors"});
    if (const json* v = top.get("schemaVersion"); v != nullptr && (!v->is_number_integer() || v->get<int>() != 1))
      top.error("schemaVersion", "must be 1");
    list = top.array("connectors", true);
    base = "connectors";
    if (list == nullptr) return out;
  } else if (doc.is_array()) {
    list = &doc;
  } else if (doc.is_object()) {
    out.push_back({doc, ""});
    return out;
  } else {
    diag.error("", std::string(
                       "the top level must be a connector object, an array of them, or {\"connectors\": [...]}, not ") +
                       doc.type_name());
    return out;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string path = element(base, i);
    if (!(*list)[i].is_object()) {
      diag.error(path, std::string("must be a connector object, not ") + (*list)[i].type_name());
      continue;
    }
    out.push_back({(*list)[i], path});
  }
  return out;
}

struct Slot {
  json raw;  // the effective (merged) JSON, the base for later overrides
  Connector connector;
};

// Applies one document's connectors onto `slots`. Overrides are merged before validation, so the
// merged connector is checked as a whole and problems are reported at the override's field paths.
void apply_document(Diag& diag, const json& doc, std::map<std::string, Slot, std::less<>>& slots, bool is_override) {
  std::map<std::string, std::string, std::less<>> seen_here;
  for (auto& entry : split_document(diag, doc)) {
    Obj head(diag, entry.object, entry.path);
    auto slug = head.str("slug", true);
    if (!slug) continue;
    if (!valid_slug(*slug)) {
      head.error("slug", in_quotes(*slug) + " must match ^[a-z0-9][a-z0-9-]{0,62}$");
      continue;
    }
    if (auto [it, inserted] = seen_here.emplace(*slug, entry.path); !inserted) {
      head.error("slug", "duplicate slug " + in_quotes(*slug) + " (also at " +
                             (it->second.empty() ? "top level" : it->second) + ")");
      continue;
    }
    bool replace = false;
    if (const json* r = head.get("replace")) {
      if (!r->is_boolean()) head.error("replace", "must be true or false");
      else if (!is_override) head.error("replace", "only allowed in connectors.d files");
      else replace = r->get<bool>();
      entry.object.erase("replace");
    }
    json merged = entry.object;
    if (auto it = slots.find(*slug); it != slots.end() && !replace) {
      merged = it->second.raw;
      merged.merge_patch(entry.object);
    }
    const std::size_t before = diag.count();
    Connector c = read_connector(Obj(diag, merged, entry.path));
    if (diag.count() != before) continue;
    slots[*slug] = Slot{std::move(merged), std::move(c)};
  }
}

// An override can redirect a provider's token endpoint, so it must be the user's own file: opened
// without following a symbolic link, owned by the daemon's user and not writable by group or others.
std::optional<std::string> read_file(Diag& diag, const std::filesystem::path& path) {
  auto text = read_owned_file(path, Privacy::no_foreign_writes, k_max_file_bytes);
  if (!text) {
    diag.error("",
               text.error().code == ErrorCode::validation_error ? "file is larger than 1 MiB" : text.error().message);
    return std::nullopt;
  }
  return std::move(*text);
}

Result<std::vector<std::filesystem::path>> list_override_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  if (dir.empty()) return files;
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (ec || st.type() == std::filesystem::file_type::not_found) return files;
  if (st.type() != std::filesystem::file_type::directory)
    return fail(ErrorCode::validation_error, dir.string() + ": connectors.d exists but is not a directory");
  if (auto owned = check_owned_dir(dir); !owned) return std::unexpected(owned.error());
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return fail(ErrorCode::validation_error, dir.string() + ": cannot list connectors.d: " + ec.message());
  for (const auto& e : it) {
    const auto name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || e.path().extension() != ".json") continue;
    std::error_code fec;
    // A symbolic link is listed so that reading it is refused, not skipped without a word.
    if (!e.is_regular_file(fec) && !e.is_symlink(fec)) continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void append_label_value(std::vector<std::string>& out, const json& v) {
  if (v.is_string() && !v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
  else if (v.is_number()) out.push_back(v.dump());
}

}  // namespace

std::string_view to_string(AuthType v) { return name_of(k_auth_types, v); }
std::string_view to_string(Availability v) { return name_of(k_availabilities, v); }
std::string_view to_string(ClientAuth v) { return name_of(k_client_auths, v); }
std::string_view to_string(BodyFormat v) { return name_of(k_body_formats, v); }
std::string_view to_string(RevocationStyle v) { return name_of(k_revocation_styles, v); }
std::string_view to_string(LabelSource v) { return name_of(k_label_sources, v); }
std::string_view to_string(WebhookSecretSource v) { return name_of(k_secret_sources, v); }

const CredentialField* Connector::find_field(std::string_view key) const {
  for (const auto& f : credential_fields)
    if (f.key == key) return &f;
  return nullptr;
}

Catalog::Catalog(std::vector<Connector> connectors) : m_connectors(std::move(connectors)) {
  std::sort(m_connectors.begin(), m_connectors.end(),
            [](const Connector& a, const Connector& b) { return a.slug < b.slug; });
}

const Connector* Catalog::find(std::string_view slug) const {
  auto it = std::lower_bound(m_connectors.begin(), m_connectors.end(), slug,
                             [](const Connector& c, std::string_view s) { return c.slug < s; });
  if (it == m_connectors.end() || it->slug != slug) return nullptr;
  return &*it;
}

Result<Catalog> load_catalog(std::string_view builtin_json, const std::filesystem::path& connectors_d) {
  std::vector<std::string> errors;
  std::map<std::string, Slot, std::less<>> slots;
  {
    Diag diag{std::string(k_builtin_name)};
    if (auto doc = parse_json(diag, builtin_json)) apply_document(diag, *doc, slots, false);
    auto e = diag.take();
    errors.insert(errors.end(), e.begin(), e.end());
  }
  auto files = list_override_files(connectors_d);
  if (!files) return std::unexpected(files.error());
  for (const auto& file : *files) {
    Diag diag{file.string()};
    if (auto text = read_file(diag, file))
      if (auto doc = parse_json(diag, *text)) apply_document(diag, *doc, slots, true);
    auto e = diag.take();
    errors.insert(errors.end(), e.begin(), e.end());
  }
  if (!errors.empty()) {
    // One problem per line, the first leading, so a one-line log still names file and field.
    std::string message;
    for (std::size_t i = 0; i < errors.size() && i < k_max_reported_errors; ++i)
      message += (i == 0 ? "" : "\n") + errors[i];
    if (errors.size() > k_max_reported_errors)
      message += "\n… and " + std::to_string(errors.size() - k_max_reported_errors) + " more problems";
    return fail(ErrorCode::validation_error, message);
  }
  std::vector<Connector> connectors;
  connectors.reserve(slots.size());
  for (auto& [slug, slot] : slots) connectors.push_back(std::move(slot.connector));
  return Catalog(std::move(connectors));
}

Result<Catalog> load_catalog(const std::filesystem::path& connectors_d) {
  return load_catalog(embedded::catalog_json, connectors_d);
}

OAuthClientEnvNames oauth_client_env_names(std::string_view slug) {
  std::string upper;
  upper.reserve(slug.size());
  for (char ch : slug) {
    if (ch == '-') upper += '_';
    else if (ch >= 'a' && ch <= 'z') upper += static_cast<char>(ch - 'a' + 'A');
    else upper += ch;
  }
  return {"ALUMIA_" + upper + "_CLIENT_ID", "ALUMIA_" + upper + "_CLIENT_SECRET"};
}

Result<std::string> resolve_api_base(const Connector& c, const EnvLookup& env) {
  if (!c.api_base) return fail(ErrorCode::bad_request, "connector " + c.slug + " has no API base URL in the catalog");
  if (!c.api_base->env_var.empty() && env) {
    if (auto v = env(c.api_base->env_var); v && !v->empty()) {
      if (auto ok = url::check_outbound_url(*v); !ok)
        return fail(ErrorCode::validation_error, c.api_base->env_var + "=" + *v + ": " + ok.error().message);
      std::string base = *v;
      while (!base.empty() && base.back() == '/') base.pop_back();
      return base;
    }
  }
  return c.api_base->default_url;
}

std::string expand_template(std::string_view text, const StringMap& values) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find('{', pos);
    if (open == std::string_view::npos) break;
    const auto close = text.find('}', open);
    if (close == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    const auto name = text.substr(open + 1, close - open - 1);
    if (auto it = values.find(name); it != values.end()) out += it->second;
    else out.append(text.substr(open, close - open + 1));
    pos = close + 1;
  }
  out.append(text.substr(pos));
  return out;
}

bool credential_value_matches(const CredentialField& field, std::string_view value) {
  if (!field.pattern) return true;
  try {
    const std::regex re(*field.pattern, std::regex::ECMAScript);
    return std::regex_match(value.begin(), value.end(), re);
  } catch (const std::exception&) {
    return false;  // validated at load, so unreachable in practice
  }
}

std::vector<UrlParam> authorize_extra_params(const OAuthConfig& oauth, bool select_account) {
  std::vector<UrlParam> out = oauth.extra_authorize_params;
  if (!select_account || !oauth.account_picker) return out;
  const auto& picker = *oauth.account_picker;
  auto it = std::find_if(out.begin(), out.end(), [&](const UrlParam& p) { return p.name == picker.name; });
  if (it == out.end()) {
    out.push_back(picker);
    return out;
  }
  std::istringstream words(it->value);
  for (std::string w; words >> w;)
    if (w == picker.value) return out;
  it->value += it->value.empty() ? picker.value : " " + picker.value;
  return out;
}

std::string extract_label(const LabelExtract& extract, const nlohmann::json& document) {
  std::vector<std::string> values;
  for (const auto& p : extract.json_pointers) {
    try {
      const json::json_pointer ptr(p);
      if (document.contains(ptr)) append_label_value(values, document.at(ptr));
    } catch (const json::exception&) {
      continue;  // a pointer that does not fit this document's shape
    }
    if (!values.empty() && extract.join.empty()) break;
  }
  if (values.empty()) return {};
  std::string label = values.front();
  if (!extract.join.empty())
    for (std::size_t i = 1; i < values.size(); ++i) label += extract.join + values[i];
  return extract.prefix + label;
}

}  // namespace alumia
