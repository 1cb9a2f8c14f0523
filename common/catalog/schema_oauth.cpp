// The catalog schema of the "oauth" block: endpoints, client authentication, token-response quirks,
// the account label; only the authorization code flow passes (OAUTH.md §1.1).
#include "schema.hpp"

#include <alumia/net/url.hpp>

#include <sstream>

namespace alumia::catalog_detail {
namespace {

// The flow sets these itself; a catalog must not (OAUTH.md §1.1 items 1, 2, 5, 8).
constexpr std::array<std::string_view, 7> k_reserved_authorize_params = {
    "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"};

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

}  // namespace

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

}  // namespace alumia::catalog_detail
