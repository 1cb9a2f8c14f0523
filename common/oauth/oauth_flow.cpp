#include <alumia/crypto/crypto.hpp>
#include <alumia/net/url.hpp>
#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::oauth {
namespace {

using nlohmann::json;
constexpr int64_t k_flow_ttl_ms = 10 * 60 * 1000;
constexpr const char* k_callback_path = "/api/v1/connections/oauth/callback";
constexpr int64_t k_refresh_margin_ms = 10 * 60 * 1000;
constexpr const char* k_at = "oauth.access_token";
constexpr const char* k_rt = "oauth.refresh_token";
constexpr const char* k_tt = "oauth.token_type";

std::string first(const std::multimap<std::string, std::string>& q, const std::string& k) {
  auto it = q.find(k);
  return it == q.end() ? std::string() : it->second;
}

std::string truncate_text(std::string s, std::size_t n = 200) {
  if (s.size() > n) s = s.substr(0, n) + "…";
  return s;
}

TokenQuirks quirks_of(const OAuthConfig& o) {
  TokenQuirks q;
  q.form_encoded_ok = true;
  q.ok_field = !o.token_response.ok_field.empty();
  q.nested_user_token = !o.token_response.nested_user_token.empty();
  return q;
}

char scope_sep_of(const OAuthConfig& o) {
  const std::string& s =
      o.token_response.scope_separator.empty() ? o.scope_separator : o.token_response.scope_separator;
  return s.empty() ? ' ' : s[0];
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string suppressed_note(uint64_t n) {
  return n == 0 ? std::string() : " (" + std::to_string(n) + " more like it since the last such line)";
}

}  // namespace

FlowService::FlowService(Core& core, std::string redirect_base)
    : m_core(core), m_redirect_base(std::move(redirect_base)) {
  while (!m_redirect_base.empty() && m_redirect_base.back() == '/') m_redirect_base.pop_back();
  m_core.set_oauth_base(m_redirect_base);
  m_cookie_path = k_callback_path;
  if (auto u = url::parse(redirect_uri())) {
    m_cookie_path = u->path;
    m_cookie_secure = u->scheme == "https";
  }
}

FlowService::~FlowService() { stop_worker(); }

Result<FlowStart> FlowService::begin(const Connection& c, bool select_account) {
  const auto& d = m_core.deps();
  const Connector* connector = d.catalog.find(c.connector_slug);
  if (!connector || !connector->oauth)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not support OAuth");
  if (c.deleted_at) return fail(ErrorCode::not_found, "no connection " + c.id);
  auto client = m_core.oauth_client(*connector);
  if (!client) return std::unexpected(client.error());
  if (!*client) {
    const auto names = oauth_client_env_names(connector->slug);
    return fail(ErrorCode::bad_request, "connector " + connector->slug + " has no OAuth client configured; set " +
                                            names.client_id + " and " + names.client_secret);
  }
  const OAuthConfig& o = *connector->oauth;
  Flow flow;
  flow.connection_id = c.id;
  flow.user_id = c.user_id;
  flow.slug = c.connector_slug;
  flow.redirect_uri = redirect_uri();
  flow.expected_issuer = o.issuer;
  flow.iss_required = o.iss_required;
  flow.expires_at_ms = d.clock.now_ms() + m_flow_ttl_ms;
  std::string state = d.random.base64url(32);  // 256 bits
  std::vector<std::pair<std::string, std::string>> params{
      {"response_type", "code"}, {"client_id", (*client)->client_id}, {"redirect_uri", flow.redirect_uri}};
  if (!o.default_scopes.empty()) params.emplace_back("scope", join(o.default_scopes, o.scope_separator));
  params.emplace_back("state", state);
  if (o.pkce) {
    std::string verifier = pkce_new_verifier(d.random);
    params.emplace_back("code_challenge", pkce_challenge_s256(verifier));
    params.emplace_back("code_challenge_method", "S256");
    flow.verifier = SecretBytes(verifier);
    wipe_string(verifier);
  }
  for (const auto& p : authorize_extra_params(o, select_account)) params.emplace_back(p.name, p.value);
  FlowStart out;
  out.authorize_url = o.authorize_url;
  out.authorize_url += (out.authorize_url.find('?') == std::string::npos ? '?' : '&');
  out.authorize_url += http::form_encode(params);
  // The browser that receives this cookie is the only one whose callback completes the flow.
  std::string nonce = d.random.base64url(32);  // 256 bits
  flow.browser_hash = crypto::sha256(nonce);
  out.set_cookie =
      cookie_name(c.id) + "=" + nonce + cookie_attributes(std::max<int64_t>(1, (m_flow_ttl_ms + 999) / 1000));
  wipe_string(nonce);
  {
    std::lock_guard lock(m_flows_mutex);
    const int64_t now = d.clock.now_ms();
    std::erase_if(m_flows, [&](const auto& kv) {
      return kv.second.connection_id == c.id || kv.second.expires_at_ms <= now;  // a new start voids the old one
    });
    m_flows[crypto::sha256(state)] = std::move(flow);
  }
  wipe_string(state);
  return out;
}

Result<TokenSet> FlowService::token_request(const Connector& connector,
                                            const std::vector<std::pair<std::string, std::string>>& form_in) {
  const auto& d = m_core.deps();
  const OAuthConfig& o = *connector.oauth;
  auto client = m_core.oauth_client(connector);
  if (!client) return std::unexpected(client.error());
  if (!*client) return fail(ErrorCode::bad_request, "no OAuth client configured for " + connector.slug);
  std::vector<std::pair<std::string, std::string>> form = form_in;
  http::OutboundRequest req;
  req.method = "POST";
  req.url = o.token_url;
  req.headers.emplace_back("Accept", "application/json");
  std::string secret = (*client)->client_secret.str();
  if (o.client_auth == ClientAuth::basic) {
    std::string cred = http::url_encode((*client)->client_id) + ":" + http::url_encode(secret);
    req.headers.emplace_back("Authorization", "Basic " + encoding::base64_encode(cred));
    wipe_string(cred);
  } else {
    form.emplace_back("client_id", (*client)->client_id);
    form.emplace_back("client_secret", secret);
  }
  wipe_string(secret);
  if (o.token_request_format == BodyFormat::json) {
    json body = json::object();
    for (const auto& [k, v] : form) body[k] = v;
    req.body = body.dump();
    req.content_type = "application/json";
  } else {
    req.body = http::form_encode(form);
    req.content_type = "application/x-www-form-urlencoded";
  }
  req.timeout = std::chrono::seconds(15);
  auto resp = d.http.send(req);
  wipe_string(req.body);
  for (auto& [k, v] : form) wipe_string(v);
  if (!resp) return std::unexpected(resp.error());
  auto parsed = parse_token_response(*resp, quirks_of(o), scope_sep_of(o));
  wipe_string(resp->body);
  if (!parsed) {
    Error e = parsed.error().to_error();
    e.message = parsed.error().code + (parsed.error().description.empty() ? "" : ": " + parsed.error().description);
    if (parsed.error().classify() == OAuthErrorKind::transient) e.code = ErrorCode::service_unavailable;
    else if (parsed.error().classify() == OAuthErrorKind::grant_invalid) e.code = ErrorCode::conflict;
    else if (e.code == ErrorCode::internal) e.code = ErrorCode::validation_error;
    return std::unexpected(e);
  }
  return std::move(*parsed);
}

std::string FlowService::read_account_label(const Connector& connector, const TokenSet& tokens) {
  const auto& src = connector.oauth->account_label;
  if (!src) return {};
  if (src->source == LabelSource::token_response) return extract_label(src->extract, tokens.extra);
  http::OutboundRequest req;
  req.method = src->method;
  req.url = src->url;
  req.headers.emplace_back("Authorization", "Bearer " + std::string(tokens.access_token.view()));
  req.headers.emplace_back("Accept", "application/json");
  for (const auto& [k, v] : connector.api_headers) req.headers.emplace_back(k, v);
  for (const auto& [k, v] : src->headers) req.headers.emplace_back(k, v);
  if (src->body) {
    req.body = src->body->dump();
    req.content_type = "application/json";
  }
  auto resp = m_core.deps().http.send(req);
  wipe_string(req.headers[0].second);
  if (!resp || resp->status / 100 != 2) {
    spdlog::warn("account label lookup for {} failed: {}", connector.slug,
                 resp ? "HTTP " + std::to_string(resp->status) : resp.error().message);
    return {};
  }
  return extract_label(src->extract, json::parse(resp->body, nullptr, false));
}

Status FlowService::store_tokens(Connection& c, const Connector& connector, const TokenSet& tokens, int64_t sent_at_ms,
                                 bool keep_old_refresh) {
  std::map<std::string, std::string> values{{k_at, std::string(tokens.access_token.view())}, {k_tt, tokens.token_type}};
  if (tokens.refresh_token) {
    values[k_rt] = std::string(tokens.refresh_token->view());
  } else if (keep_old_refresh) {
    auto old = open_tokens(c);
    if (!old) return std::unexpected(old.error());
    if (auto it = old->find(k_rt); it != old->end()) values[k_rt] = it->second;
    for (auto& [k, v] : *old) wipe_string(v);
  }
  auto sealed = m_core.seal_values("connections", c.id, values);
  for (auto& [k, v] : values) wipe_string(v);
  if (!sealed) return std::unexpected(sealed.error());
  const int64_t now = m_core.deps().clock.now_ms();
  if (tokens.expires_in) c.expires_at = sent_at_ms + *tokens.expires_in * 1000;
  else c.expires_at.reset();
  if (tokens.scope_present) c.scopes = tokens.scopes;
  else if (c.scopes.empty()) c.scopes = connector.oauth->default_scopes;
  c.status = ConnectionStatus::active;
  c.error.reset();
  c.updated_at = now;
  // One transaction, synchronous=FULL: a rotated refresh token is on disk before the new access
  // token reaches anyone.
  return m_core.deps().store.update_connection(c, &*sealed);
}

CallbackOutcome FlowService::complete(const std::multimap<std::string, std::string>& query,
                                      const http::Headers& headers) {
  const auto& d = m_core.deps();
  const std::string state = first(query, "state");
  Flow flow;
  {
    std::lock_guard lock(m_flows_mutex);
    const int64_t now = d.clock.now_ms();
    auto it = state.empty() ? m_flows.end() : m_flows.find(crypto::sha256(state));
    if (it == m_flows.end()) {
      if (auto n = m_unknown_state_log.allow(now))
        spdlog::warn("OAuth callback with an unknown or already used state; ignored{}", suppressed_note(*n));
      return refusal_outcome(CallbackRefusal::unknown_state);
    }
    if (it->second.expires_at_ms > now && !bound_to_browser(it->second, headers)) {
      // Another browser (a forwarded provider link): refused; the flow stays for its own browser.
      if (auto n = m_other_browser_log.allow(now))
        spdlog::warn(
            "OAuth callback for connection {} from a browser that did not start the flow (no or wrong binding "
            "cookie); refused, the flow stays pending{}",
            it->second.connection_id, suppressed_note(*n));
      CallbackOutcome out = refusal_outcome(CallbackRefusal::other_browser);
      out.connection_id = it->second.connection_id;
      return out;
    }
    flow = std::move(it->second);
    m_flows.erase(it);  // single use, consumed before any exchange
  }
  CallbackOutcome out{false, "error", flow.connection_id, ""};
  if (flow.expires_at_ms <= d.clock.now_ms()) {
    out.message = "This sign-in took longer than 10 minutes and expired. Start again with alumia-connect connect.";
    return out;
  }
  auto found = d.store.find_connection(flow.connection_id);
  if (!found || !*found || (*found)->deleted_at) {
    out.message = "The connection no longer exists.";
    return out;
  }
  Connection c = **found;
  const Connector* connector = d.catalog.find(flow.slug);
  if (!connector || !connector->oauth) {
    out.message = "The connector is no longer in the catalog.";
    return out;
  }
  auto set_error = [&](const std::string& code, const std::string& message) {
    c.status = ConnectionStatus::error;
    c.error = ConnectionError{code, truncate_text(message)};
    c.updated_at = d.clock.now_ms();
    (void)d.store.update_connection(c, nullptr);
    spdlog::warn("OAuth for connection {} ({}) failed: {}", c.id, c.connector_slug, c.error->message);
    out.message = c.error->message;
    return out;
  };
  // Mix-up defence (RFC 9207): a present iss must match; where the catalog says it is always sent,
  // a missing one aborts too.
  const auto iss = query.find("iss");
  if (iss != query.end() && !flow.expected_issuer.empty() && iss->second != flow.expected_issuer)
    return set_error("invalid_issuer",
                     "The authorization response came from an unexpected issuer; no token was requested.");
  if (iss == query.end() && flow.iss_required)
    return set_error("invalid_issuer", "The authorization response did not name its issuer; no token was requested.");
  if (const std::string err = first(query, "error"); !err.empty()) {
    const std::string desc = first(query, "error_description");
    return set_error(truncate_text(err, 64), desc.empty() ? err : err + ": " + desc);
  }
  std::string code = first(query, "code");
  if (code.empty()) return set_error("invalid_request", "The provider sent neither a code nor an error.");
  std::vector<std::pair<std::string, std::string>> form{
      {"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", flow.redirect_uri}};
  if (!flow.verifier.empty()) form.emplace_back("code_verifier", flow.verifier.str());
  wipe_string(code);
  const int64_t sent_at = d.clock.now_ms();
  auto tokens = token_request(*connector, form);
  for (auto& [k, v] : form) wipe_string(v);
  if (!tokens) return set_error("token_exchange_failed", "The token exchange failed: " + tokens.error().message);
  const std::string previous_label = c.account_label;
  const std::string label = read_account_label(*connector, *tokens);
  if (!label.empty()) c.account_label = label;
  if (auto st = store_tokens(c, *connector, *tokens, sent_at, false); !st)
    return set_error("store_failed", "The tokens could not be stored: " + st.error().message);
  out.ok = true;
  out.result = "success";
  out.message = "Connected " + connector->name + (c.account_label.empty() ? "" : " as " + c.account_label) + ".";
  if (!previous_label.empty() && !label.empty() && previous_label != label)
    out.message += " Note: this is a different account than before (" + previous_label + ").";
  spdlog::info("OAuth connection {} ({}) active{}", c.id, c.connector_slug,
               c.account_label.empty() ? "" : " as " + c.account_label);
  return out;
}

std::string FlowService::remember(const CallbackOutcome& outcome) {
  const int64_t now = m_core.deps().clock.now_ms();
  std::string id = m_core.deps().random.base64url(16);
  std::lock_guard lock(m_flows_mutex);
  std::erase_if(m_results, [&](const auto& kv) { return kv.second.second <= now; });
  m_results[id] = {outcome, now + k_flow_ttl_ms};
  return id;
}

std::size_t FlowService::results_held() {
  std::lock_guard lock(m_flows_mutex);
  return m_results.size();
}

std::optional<CallbackOutcome> FlowService::recall(std::string_view id) {
  std::lock_guard lock(m_flows_mutex);
  auto it = m_results.find(std::string(id));
  if (it == m_results.end()) return std::nullopt;
  return it->second.first;
}

std::shared_ptr<std::mutex> FlowService::connection_mutex(const std::string& id) {
  std::lock_guard lock(m_locks_mutex);
  auto& m = m_locks[id];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

Result<std::map<std::string, std::string>> FlowService::open_tokens(const Connection& c) {
  auto stored = m_core.deps().store.load_secrets("connections", c.id);
  if (!stored) return std::unexpected(stored.error());
  std::map<std::string, std::string> out;
  for (const auto& v : *stored) {
    auto opened = m_core.deps().sealer.open(v.blob, "connections", c.id, v.field);
    if (!opened) return std::unexpected(opened.error());
    out[v.field] = opened->str();
  }
  return out;
}

Status FlowService::refresh_locked(Connection& c) {
  const auto& d = m_core.deps();
  const Connector* connector = d.catalog.find(c.connector_slug);
  if (!connector || !connector->oauth) return fail(ErrorCode::conflict, "connector " + c.connector_slug + " is gone");
  auto tokens = open_tokens(c);
  if (!tokens) return std::unexpected(tokens.error());
  auto rt = tokens->find(k_rt);
  if (rt == tokens->end()) {
    for (auto& [k, v] : *tokens) wipe_string(v);
    return fail(ErrorCode::conflict,
                "connection " + c.id + " has no refresh token; run `alumia-connect connect --reconnect " + c.id + "`");
  }
  std::vector<std::pair<std::string, std::string>> form{{"grant_type", "refresh_token"}, {"refresh_token", rt->second}};
  for (auto& [k, v] : *tokens) wipe_string(v);
  const int64_t sent_at = d.clock.now_ms();
  auto fresh = token_request(*connector, form);
  for (auto& [k, v] : form) wipe_string(v);
  if (!fresh) {
    const Error& e = fresh.error();
    if (e.code == ErrorCode::service_unavailable) return std::unexpected(e);  // transient: back off, stay active
    if (e.code == ErrorCode::conflict) {                                      // invalid_grant: the grant is dead
      c.status = ConnectionStatus::expired;
      c.error =
          ConnectionError{"invalid_grant", "The provider no longer accepts this grant (" + truncate_text(e.message) +
                                               "). Run `alumia-connect connect --reconnect " + c.id + "`."};
      c.expires_at.reset();
      c.updated_at = d.clock.now_ms();
      const std::vector<SealedValue> none;
      (void)d.store.update_connection(c, &none);  // the dead tokens are destroyed; the record and id stay
      spdlog::warn("connection {} ({}) expired: {}", c.id, c.connector_slug, e.message);
      return fail(ErrorCode::conflict, c.error->message);
    }
    c.status = ConnectionStatus::error;
    c.error = ConnectionError{"refresh_failed", "Refresh failed: " + truncate_text(e.message) +
                                                    ". Check the client with `alumia-connect oauth-client set " +
                                                    c.connector_slug + "`."};
    c.updated_at = d.clock.now_ms();
    (void)d.store.update_connection(c, nullptr);
    return fail(ErrorCode::validation_error, c.error->message);
  }
  c.last_refreshed_at = d.clock.now_ms();
  if (auto st = store_tokens(c, *connector, *fresh, sent_at, true); !st) return st;
  spdlog::info("refreshed connection {} ({})", c.id, c.connector_slug);
  return {};
}

Status FlowService::refresh_if_due(const std::string& connection_id) {
  auto lock_ptr = connection_mutex(connection_id);
  std::lock_guard lock(*lock_ptr);
  auto found = m_core.deps().store.find_connection(connection_id);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->deleted_at) return fail(ErrorCode::not_found, "no connection " + connection_id);
  Connection c = **found;
  // Read again under the lock: a token read may have refreshed it since the worker listed it.
  if (!refresh_due(c, m_core.deps().clock.now_ms())) return {};
  return refresh_locked(c);
}

bool refresh_due(const Connection& c, int64_t now_ms) {
  if (!c.expires_at) return false;
  const int64_t base = c.last_refreshed_at.value_or(c.updated_at);
  const int64_t lifetime = *c.expires_at - base;
  if (lifetime < 2 * k_refresh_margin_ms) return now_ms >= base + lifetime / 2;  // short-lived: at half its life
  return *c.expires_at - now_ms < k_refresh_margin_ms;
}

Result<AccessToken> FlowService::access_token(const Connection& conn) {
  const auto& d = m_core.deps();
  // Single flight (SPEC §6): concurrent reads queue on the connection's lock; the first that finds the
  // token inside the refresh margin refreshes it, and the others then find a fresh token. A read that
  // waited while another refreshed never refreshes again, whatever the token's lifetime.
  const int64_t asked_at = d.clock.now_ms();
  auto lock_ptr = connection_mutex(conn.id);
  std::lock_guard lock(*lock_ptr);
  auto found = d.store.find_connection(conn.id);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->deleted_at) return fail(ErrorCode::not_found, "no connection " + conn.id);
  Connection c = **found;
  if (c.status != ConnectionStatus::active)
    return fail(ErrorCode::conflict, "connection " + c.id + " is " + std::string(to_string(c.status)) +
                                         (c.error ? ": " + c.error->message : std::string()));
  const bool refreshed_meanwhile = c.last_refreshed_at && *c.last_refreshed_at >= asked_at;
  if (!refreshed_meanwhile && refresh_due(c, d.clock.now_ms())) {
    if (auto st = refresh_locked(c); !st) return std::unexpected(st.error());
  }
  auto tokens = open_tokens(c);
  if (!tokens) return std::unexpected(tokens.error());
  AccessToken out;
  out.access_token = SecretBytes((*tokens)[k_at]);
  out.token_type = (*tokens)[k_tt].empty() ? "Bearer" : (*tokens)[k_tt];
  out.expires_at = c.expires_at;
  out.scopes = c.scopes;
  for (auto& [k, v] : *tokens) wipe_string(v);
  return out;
}

RevocationOutcome FlowService::revoke_at_provider(const Connector& connector, const std::optional<std::string>& at,
                                                  const std::optional<std::string>& rt) {
  const auto& o = *connector.oauth;
  const auto& d = m_core.deps();
  RevocationOutcome out;
  if (o.revocation.style == RevocationStyle::none) {
    out.detail = connector.name +
                 " has no revocation endpoint: the tokens were destroyed locally; remove the app in your " +
                 connector.name + " account settings to revoke the grant";
    return out;
  }
  if (!at && !rt) {
    out.detail = "no provider tokens to revoke";
    return out;
  }
  out.attempted = true;
  auto client = m_core.oauth_client(connector);
  http::OutboundRequest req;
  req.method = o.revocation.method.empty() ? "POST" : o.revocation.method;
  req.timeout = std::chrono::seconds(10);
  const std::string client_id = client && *client ? (*client)->client_id : std::string();
  std::string secret = client && *client ? (*client)->client_secret.str() : std::string();
  req.url = expand_template(o.revocation.url, {{"client_id", http::url_encode(client_id)}});
  auto basic = [&] {
    return "Basic " + encoding::base64_encode(http::url_encode(client_id) + ":" + http::url_encode(secret));
  };
  switch (o.revocation.style) {
    case RevocationStyle::rfc7009: {
      std::vector<std::pair<std::string, std::string>> form;
      if (rt) form = {{"token", *rt}, {"token_type_hint", "refresh_token"}};
      else form = {{"token", *at}, {"token_type_hint", "access_token"}};
      if (o.client_auth == ClientAuth::basic) {
        req.headers.emplace_back("Authorization", basic());
      } else {
        form.emplace_back("client_id", client_id);
        form.emplace_back("client_secret", secret);
      }
      req.body = http::form_encode(form);
      req.content_type = "application/x-www-form-urlencoded";
      break;
    }
    case RevocationStyle::github:
      req.headers.emplace_back("Authorization", basic());
      req.body = json{{"access_token", at.value_or("")}}.dump();
      req.content_type = "application/json";
      break;
    case RevocationStyle::notion:
      req.headers.emplace_back("Authorization", basic());
      req.body = json{{"token", at.value_or(rt.value_or(""))}}.dump();
      req.content_type = "application/json";
      break;
    case RevocationStyle::slack:
    case RevocationStyle::bearer:
      req.headers.emplace_back("Authorization", "Bearer " + at.value_or(""));
      break;
    case RevocationStyle::none:
      break;
  }
  wipe_string(secret);
  req.headers.emplace_back("Accept", "application/json");
  auto resp = d.http.send(req);
  wipe_string(req.body);
  for (auto& [k, v] : req.headers) wipe_string(v);
  if (!resp) {
    out.detail = "revocation request failed: " + resp.error().message;
    return out;
  }
  bool ok = resp->status / 100 == 2;
  if (ok && o.revocation.style == RevocationStyle::slack) {
    auto j = json::parse(resp->body, nullptr, false);
    ok = j.is_object() && j.value("ok", false);
  }
  out.ok = ok;
  out.detail = ok ? "revoked at " + connector.name : "revocation answered HTTP " + std::to_string(resp->status);
  return out;
}

Result<RevocationOutcome> FlowService::disconnect(const Caller& caller, std::string_view id) {
  auto c = m_core.get_connection(caller, id);
  if (!c) {
    if (c.error().code == ErrorCode::not_found) {
      auto again = m_core.revoke_connection(caller, id);  // yields CONFLICT for a revoked one
      if (!again) return std::unexpected(again.error());
    }
    return std::unexpected(c.error());
  }
  std::optional<std::string> at, rt;
  const Connector* connector = m_core.deps().catalog.find(c->connector_slug);
  auto lock_ptr = connection_mutex(c->id);
  std::lock_guard lock(*lock_ptr);
  if (connector && connector->oauth) {
    auto tokens = open_tokens(*c);
    if (tokens) {
      if (auto it = tokens->find(k_at); it != tokens->end()) at = it->second;
      if (auto it = tokens->find(k_rt); it != tokens->end()) rt = it->second;
      for (auto& [k, v] : *tokens) wipe_string(v);
    }
  }
  // (1) destroy locally and commit, (2) then tell the provider: there is no outbox to retry from.
  auto local = m_core.revoke_connection(caller, id);
  if (!local) return std::unexpected(local.error());
  RevocationOutcome out;
  if (connector && connector->oauth) out = revoke_at_provider(*connector, at, rt);
  else out.detail = "no provider tokens";
  if (at) wipe_string(*at);
  if (rt) wipe_string(*rt);
  spdlog::info("connection {} disconnected; provider revocation: {}", c->id, out.detail);
  return out;
}

void FlowService::start_worker(std::chrono::milliseconds interval) {
  m_worker = std::thread([this, interval] { worker_loop(interval); });
}

void FlowService::stop_worker() {
  {
    std::lock_guard lock(m_worker_mutex);
    m_stop = true;
  }
  m_worker_cv.notify_all();
  if (m_worker.joinable()) m_worker.join();
}

void FlowService::worker_loop(std::chrono::milliseconds interval) {
  const auto& d = m_core.deps();
  for (;;) {
    {
      std::unique_lock lock(m_worker_mutex);
      if (m_worker_cv.wait_for(lock, interval, [&] { return m_stop; })) return;
    }
    const int64_t now = d.clock.now_ms();
    auto due = d.store.list_expiring_connections(now + k_refresh_margin_ms);
    if (!due) continue;
    for (const auto& c : *due) {
      if (!refresh_due(c, now)) continue;  // short-lived tokens refresh at half their life, not at every tick
      if (auto it = m_backoff_until.find(c.id); it != m_backoff_until.end() && it->second > now) continue;
      auto st = refresh_if_due(c.id);
      if (!st && st.error().code == ErrorCode::service_unavailable) {
        const int n = ++m_failures[c.id];
        const int64_t delay = std::min<int64_t>(int64_t{5000} << std::min(n, 8), 15 * 60 * 1000);
        m_backoff_until[c.id] =
            now + delay + static_cast<int64_t>(d.random.below(static_cast<uint64_t>(delay / 4 + 1)));
        spdlog::warn("refresh of {} failed ({}); next try in {} s", c.id, st.error().message, delay / 1000);
      } else {
        m_failures.erase(c.id);
        m_backoff_until.erase(c.id);
      }
      std::lock_guard lock(m_worker_mutex);
      if (m_stop) return;
    }
  }
}

}  // namespace alumia::oauth
