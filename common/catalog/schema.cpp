// The catalog schema: one connector object → a validated Connector (catalog/README.md), every
// problem reported at its field path. The oauth block is read in schema_oauth.cpp.
#include "schema.hpp"

#include <alumia/net/url.hpp>

#include <regex>

namespace alumia {
namespace catalog_detail {
namespace {

constexpr std::array<std::string_view, 1> k_commands = {"setup-webhook"};
constexpr std::array<std::string_view, 4> k_endpoint_extras = {"verifyToken", "audience", "jwksUrl",
                                                               "serviceAccountEmail"};

std::string provider_list() {
  std::string out;
  for (const Provider p : all_providers()) out += (out.empty() ? "" : ", ") + std::string(to_string(p));
  return out;
}

template <std::size_t N>
std::string list_of(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto v : set) out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_upper_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

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

void check_json_pointer(Diag& diag, const std::string& path, const std::string& pointer) {
  try {
    [[maybe_unused]] json::json_pointer p(pointer);
  } catch (const json::exception&) {
    diag.error(path, in_quotes(pointer) + " is not a JSON pointer (RFC 6901), e.g. \"/result/username\"");
  }
}

}  // namespace

bool valid_slug(std::string_view s) {  // ^[a-z0-9][a-z0-9-]{0,62}$
  if (s.empty() || s.size() > 63 || !is_lower_alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

void check_url(Diag& diag, const std::string& path, const std::string& text, const std::set<std::string>& allowed,
               const std::string& api_base) {
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

namespace {

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
    // One verifier per Provider exists in the daemon (PROVIDERS.md §10); nothing else can be named.
    if (auto provider = parse_provider(*p)) info.provider = *provider;
    else w.error("provider", in_quotes(*p) + " has no verifier; known providers: " + provider_list());
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

}  // namespace

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
  auto auth = o.enumeration("authType", &parse_auth_type, auth_types(), true);
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

}  // namespace catalog_detail

using catalog_detail::name_of;

std::string_view to_string(Availability v) { return name_of(catalog_detail::k_availabilities, v); }
std::string_view to_string(ClientAuth v) { return name_of(catalog_detail::k_client_auths, v); }
std::string_view to_string(BodyFormat v) { return name_of(catalog_detail::k_body_formats, v); }
std::string_view to_string(RevocationStyle v) { return name_of(catalog_detail::k_revocation_styles, v); }
std::string_view to_string(LabelSource v) { return name_of(catalog_detail::k_label_sources, v); }
std::string_view to_string(WebhookSecretSource v) { return name_of(catalog_detail::k_secret_sources, v); }
}  // namespace alumia
