// oauth::FlowService, the handshake: starting a flow (state, PKCE, the browser-binding cookie) and
// the callback (state, cookie, issuer, code exchange), with the outcomes the result page shows.
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include "flow_internal.hpp"

#include <alumia/crypto/crypto.hpp>
#include <alumia/net/url.hpp>
#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::oauth {
namespace {

using namespace detail;
constexpr const char* k_callback_path = "/api/v1/connections/oauth/callback";

std::string first(const std::multimap<std::string, std::string>& q, const std::string& k) {
  auto it = q.find(k);
  return it == q.end() ? std::string() : it->second;
}

std::string suppressed_note(uint64_t n) {
  return n == 0 ? std::string() : " (" + std::to_string(n) + " more like it since the last such line)";
}

}  // namespace

FlowService::FlowService(FlowServiceDeps deps) : m_d(std::move(deps)), m_redirect_base(m_d.redirect_base) {
  while (!m_redirect_base.empty() && m_redirect_base.back() == '/') m_redirect_base.pop_back();
  m_cookie_path = k_callback_path;
  if (auto u = url::parse(redirect_uri())) {
    m_cookie_path = u->path;
    m_cookie_secure = u->scheme == "https";
  }
}

FlowService::~FlowService() { stop_worker(); }

Result<FlowStart> FlowService::begin(const Connection& c, bool select_account) {
  const auto& d = m_d;
  const Connector* connector = d.catalog.find(c.connector_slug);
  if (!connector || !connector->oauth)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not support OAuth");
  if (c.deleted_at) return fail(ErrorCode::not_found, "no connection " + c.id);
  auto client = TRY(m_d.clients.find(*connector));
  if (!client) {
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
      {"response_type", "code"}, {"client_id", client->client_id}, {"redirect_uri", flow.redirect_uri}};
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

CallbackOutcome FlowService::complete(const std::multimap<std::string, std::string>& query,
                                      const http::Headers& headers) {
  const auto& d = m_d;
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
  const int64_t now = m_d.clock.now_ms();
  std::string id = m_d.random.base64url(16);
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

}  // namespace alumia::oauth
