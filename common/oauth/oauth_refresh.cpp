// oauth::FlowService, the tokens: the token request (exchange and refresh grants), storing them
// sealed, refresh (single flight per connection, and the background worker) and token reads (SPEC §6).
#include <alumia/base/try.hpp>
#include "flow_internal.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/base/metrics.hpp>
#include <alumia/connections/sealed_values.hpp>
#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::oauth {
namespace {

using namespace detail;
using nlohmann::json;

TokenQuirks quirks_of(const OAuthConfig& o) {
  TokenQuirks q;
  q.form_encoded_ok = true;
  q.ok_field = !o.token_response.ok_field.empty();
  q.nested_user_token = !o.token_response.nested_user_token.empty();
  return q;
}

// GET /metrics: token refreshes by outcome — refreshed, unavailable (transient; retried), expired
// (invalid_grant: reconnect), failed (any other answer).
void count_refresh(const char* outcome) {
  metrics::process_registry()
      .counter("alumia_oauth_refresh_total", "OAuth token refresh requests, by outcome", {{"outcome", outcome}})
      .inc();
}

char scope_sep_of(const OAuthConfig& o) {
  const std::string& s =
      o.token_response.scope_separator.empty() ? o.scope_separator : o.token_response.scope_separator;
  return s.empty() ? ' ' : s[0];
}

}  // namespace

Result<TokenSet> FlowService::token_request(const Connector& connector,
                                            const std::vector<std::pair<std::string, std::string>>& form_in) {
  const auto& d = m_d;
  const OAuthConfig& o = *connector.oauth;
  auto client = TRY(m_d.clients.find(connector));
  if (!client) return fail(ErrorCode::bad_request, "no OAuth client configured for " + connector.slug);
  std::vector<std::pair<std::string, std::string>> form = form_in;
  http::OutboundRequest req;
  req.method = "POST";
  req.url = o.token_url;
  req.headers.emplace_back("Accept", "application/json");
  std::string secret = client->client_secret.str();
  if (o.client_auth == ClientAuth::basic) {
    std::string cred = http::url_encode(client->client_id) + ":" + http::url_encode(secret);
    req.headers.emplace_back("Authorization", "Basic " + encoding::base64_encode(cred));
    wipe_string(cred);
  } else {
    form.emplace_back("client_id", client->client_id);
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
  auto resp = m_d.http.send(req);
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
    auto old = TRY(open_tokens(c));
    if (auto it = old.find(k_rt); it != old.end()) values[k_rt] = it->second;
    for (auto& [k, v] : old) wipe_string(v);
  }
  auto sealed = seal_values(m_d.sealer, "connections", c.id, values);
  for (auto& [k, v] : values) wipe_string(v);
  if (!sealed) return std::unexpected(sealed.error());
  const int64_t now = m_d.clock.now_ms();
  if (tokens.expires_in) c.expires_at = sent_at_ms + *tokens.expires_in * 1000;
  else c.expires_at.reset();
  if (tokens.scope_present) c.scopes = tokens.scopes;
  else if (c.scopes.empty()) c.scopes = connector.oauth->default_scopes;
  c.status = ConnectionStatus::active;
  c.error.reset();
  c.updated_at = now;
  // One transaction, synchronous=FULL: a rotated refresh token is on disk before the new access
  // token reaches anyone.
  return m_d.store.update_connection(c, &*sealed);
}

std::shared_ptr<std::mutex> FlowService::connection_mutex(const std::string& id) {
  std::lock_guard lock(m_locks_mutex);
  auto& m = m_locks[id];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

Result<std::map<std::string, std::string>> FlowService::open_tokens(const Connection& c) {
  return open_values(m_d.sealer, m_d.store, "connections", c.id);
}

Status FlowService::refresh_locked(Connection& c) {
  const auto& d = m_d;
  const Connector* connector = d.catalog.find(c.connector_slug);
  if (!connector || !connector->oauth) return fail(ErrorCode::conflict, "connector " + c.connector_slug + " is gone");
  auto tokens = TRY(open_tokens(c));
  auto rt = tokens.find(k_rt);
  if (rt == tokens.end()) {
    for (auto& [k, v] : tokens) wipe_string(v);
    return fail(ErrorCode::conflict,
                "connection " + c.id + " has no refresh token; run `alumia-connect connect --reconnect " + c.id + "`");
  }
  std::vector<std::pair<std::string, std::string>> form{{"grant_type", "refresh_token"}, {"refresh_token", rt->second}};
  for (auto& [k, v] : tokens) wipe_string(v);
  const int64_t sent_at = d.clock.now_ms();
  auto fresh = token_request(*connector, form);
  for (auto& [k, v] : form) wipe_string(v);
  if (!fresh) {
    const Error& e = fresh.error();
    if (e.code == ErrorCode::service_unavailable) {  // transient: back off, stay active
      count_refresh("unavailable");
      return std::unexpected(e);
    }
    if (e.code == ErrorCode::conflict) {  // invalid_grant: the grant is dead
      count_refresh("expired");
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
    count_refresh("failed");
    c.status = ConnectionStatus::error;
    c.error = ConnectionError{"refresh_failed", "Refresh failed: " + truncate_text(e.message) +
                                                    ". Check the client with `alumia-connect oauth-client set " +
                                                    c.connector_slug + "`."};
    c.updated_at = d.clock.now_ms();
    (void)d.store.update_connection(c, nullptr);
    return fail(ErrorCode::validation_error, c.error->message);
  }
  count_refresh("refreshed");
  c.last_refreshed_at = d.clock.now_ms();
  TRY(store_tokens(c, *connector, *fresh, sent_at, true));
  spdlog::info("refreshed connection {} ({})", c.id, c.connector_slug);
  return {};
}

Status FlowService::refresh_if_due(const std::string& connection_id) {
  auto lock_ptr = connection_mutex(connection_id);
  std::lock_guard lock(*lock_ptr);
  const auto across_daemons = TRY(m_d.store.lock_connection(connection_id));
  auto found = TRY(m_d.store.find_connection(connection_id));
  if (!found || found->deleted_at) return fail(ErrorCode::not_found, "no connection " + connection_id);
  Connection c = *found;
  // Read again under the lock: a token read may have refreshed it since the worker listed it.
  if (!refresh_due(c, m_d.clock.now_ms())) return {};
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
  const auto& d = m_d;
  // Single flight (SPEC §6): concurrent reads queue on the connection's lock (this daemon's mutex, then the
  // store's lock across daemons); the first that finds the token inside the refresh margin refreshes it,
  // and the others then find a fresh token. A read that waited while another refreshed never refreshes
  // again, whatever the token's lifetime.
  const int64_t asked_at = d.clock.now_ms();
  auto lock_ptr = connection_mutex(conn.id);
  std::lock_guard lock(*lock_ptr);
  const auto across_daemons = TRY(d.store.lock_connection(conn.id));  // the other daemons of a shared store
  auto found = TRY(d.store.find_connection(conn.id));
  if (!found || found->deleted_at) return fail(ErrorCode::not_found, "no connection " + conn.id);
  Connection c = *found;
  if (c.status != ConnectionStatus::active)
    return fail(ErrorCode::conflict, "connection " + c.id + " is " + std::string(to_string(c.status)) +
                                         (c.error ? ": " + c.error->message : std::string()));
  const bool refreshed_meanwhile = c.last_refreshed_at && *c.last_refreshed_at >= asked_at;
  if (!refreshed_meanwhile && refresh_due(c, d.clock.now_ms())) {
    TRY(refresh_locked(c));
  }
  auto tokens = TRY(open_tokens(c));
  AccessToken out;
  out.access_token = SecretBytes(tokens[k_at]);
  out.token_type = tokens[k_tt].empty() ? "Bearer" : tokens[k_tt];
  out.expires_at = c.expires_at;
  out.scopes = c.scopes;
  for (auto& [k, v] : tokens) wipe_string(v);
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
  const auto& d = m_d;
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
