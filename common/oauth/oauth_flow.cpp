// oauth::FlowService, the handshake: starting a flow (state, PKCE, the browser-binding cookie) and
// the callback (state, cookie, issuer, code exchange), with the outcomes the result page shows. The flows
// and the outcomes live in the store (Store::put_oauth_flow …), so any daemon of a shared store serves any
// step; this process keeps only its log limiters.
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include "flow_internal.hpp"

#include <alumia/base/encoding.hpp>
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

// Where the PKCE verifier is sealed: its own table, the row of its state's hash (the AAD binds it there).
constexpr const char* k_flow_table = "oauth_flows";
constexpr const char* k_verifier_field = "pkce_verifier";

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
  OAuthFlowRecord flow;
  flow.connection_id = c.id;
  flow.user_id = c.user_id;
  flow.connector_slug = c.connector_slug;
  flow.redirect_uri = redirect_uri();
  flow.expected_issuer = o.issuer;
  flow.iss_required = o.iss_required;
  const int64_t now = d.clock.now_ms();
  flow.expires_at = now + m_flow_ttl_ms;
  std::string state = d.random.base64url(32);  // 256 bits
  flow.state_hash = crypto::sha256(state);
  std::vector<std::pair<std::string, std::string>> params{
      {"response_type", "code"}, {"client_id", client->client_id}, {"redirect_uri", flow.redirect_uri}};
  if (!o.default_scopes.empty()) params.emplace_back("scope", join(o.default_scopes, o.scope_separator));
  params.emplace_back("state", state);
  if (o.pkce) {
    std::string verifier = pkce_new_verifier(d.random);
    params.emplace_back("code_challenge", pkce_challenge_s256(verifier));
    params.emplace_back("code_challenge_method", "S256");
    auto sealed = d.sealer.seal(verifier, k_flow_table, encoding::hex_encode(flow.state_hash), k_verifier_field);
    wipe_string(verifier);
    if (!sealed) {
      wipe_string(state);
      return std::unexpected(sealed.error());
    }
    flow.sealed_verifier = std::move(*sealed);
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
  wipe_string(state);
  TRY(d.store.put_oauth_flow(flow, now));  // a new start voids the connection's old flow
  return out;
}

CallbackOutcome FlowService::complete(const std::multimap<std::string, std::string>& query,
                                      const http::Headers& headers) {
  const auto& d = m_d;
  const std::string state = first(query, "state");
  const std::string state_hash = state.empty() ? std::string() : crypto::sha256(state);
  auto unknown_state = [&] {
    std::lock_guard lock(m_log_mutex);
    if (auto n = m_unknown_state_log.allow(d.clock.now_ms()))
      spdlog::warn("OAuth callback with an unknown or already used state; ignored{}", suppressed_note(*n));
    return refusal_outcome(CallbackRefusal::unknown_state);
  };
  auto store_failed = [&](const Error& e) {
    spdlog::warn("OAuth callback: the store failed: {}", e.message);
    return CallbackOutcome{false, "error", "",
                           "The sign-in could not be checked because the store is unavailable (" + e.message +
                               "). Nothing changed; open the provider's link again in a moment, or start again "
                               "with alumia-connect connect."};
  };
  if (state_hash.empty()) return unknown_state();
  auto pending = d.store.find_oauth_flow(state_hash);
  if (!pending) return store_failed(pending.error());
  if (!*pending) return unknown_state();
  if ((*pending)->expires_at > d.clock.now_ms() && !bound_to_browser(**pending, headers)) {
    // Another browser (a forwarded provider link): refused; the flow stays for its own browser.
    {
      std::lock_guard lock(m_log_mutex);
      if (auto n = m_other_browser_log.allow(d.clock.now_ms()))
        spdlog::warn(
            "OAuth callback for connection {} from a browser that did not start the flow (no or wrong binding "
            "cookie); refused, the flow stays pending{}",
            (*pending)->connection_id, suppressed_note(*n));
    }
    CallbackOutcome out = refusal_outcome(CallbackRefusal::other_browser);
    out.connection_id = (*pending)->connection_id;
    return out;
  }
  // Single use, consumed before any exchange: one statement, so that of two daemons (or two requests) that
  // got here with the same state one takes it and the other finds it gone.
  auto taken = d.store.take_oauth_flow(state_hash);
  if (!taken) return store_failed(taken.error());
  if (!*taken) return unknown_state();
  const OAuthFlowRecord flow = std::move(**taken);
  CallbackOutcome out{false, "error", flow.connection_id, ""};
  if (flow.expires_at <= d.clock.now_ms()) {
    out.message = "This sign-in took longer than 10 minutes and expired. Start again with alumia-connect connect.";
    return out;
  }
  auto found = d.store.find_connection(flow.connection_id);
  if (!found || !*found || (*found)->deleted_at) {
    out.message = "The connection no longer exists.";
    return out;
  }
  Connection c = **found;
  const Connector* connector = d.catalog.find(flow.connector_slug);
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
  wipe_string(code);
  if (!flow.sealed_verifier.empty()) {
    auto verifier =
        d.sealer.open(flow.sealed_verifier, k_flow_table, encoding::hex_encode(flow.state_hash), k_verifier_field);
    if (!verifier) {
      for (auto& [k, v] : form) wipe_string(v);
      return set_error("store_failed", "The sign-in's PKCE verifier could not be opened: " + verifier.error().message);
    }
    form.emplace_back("code_verifier", verifier->str());
  }
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

Result<std::string> FlowService::remember(const CallbackOutcome& outcome) {
  const int64_t now = m_d.clock.now_ms();
  std::string id = m_d.random.base64url(16);
  TRY(m_d.store.put_oauth_result(OAuthResultRecord{crypto::sha256(id), outcome.ok, outcome.result,
                                                   outcome.connection_id, outcome.message, now + k_flow_ttl_ms},
                                 now));
  return id;
}

std::size_t FlowService::results_held() { return m_d.store.count_oauth_results(m_d.clock.now_ms()).value_or(0); }

Result<std::optional<CallbackOutcome>> FlowService::recall(std::string_view id) {
  if (id.empty()) return std::optional<CallbackOutcome>();
  auto r = TRY(m_d.store.find_oauth_result(crypto::sha256(id), m_d.clock.now_ms()));
  if (!r) return std::optional<CallbackOutcome>();
  return std::optional<CallbackOutcome>(CallbackOutcome{r->ok, r->result, r->connection_id, r->message});
}

}  // namespace alumia::oauth
