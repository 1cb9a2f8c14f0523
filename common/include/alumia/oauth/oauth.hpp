#pragma once
// OAuth authorization-code flows (SPEC §6, OAUTH.md): pending flows in the store (any daemon of a shared
// store completes them), the callback, token
// exchange, refresh (single flight per connection), provider revocation and token reads.
#include <alumia/auth/api_keys.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/oauth/oauth_token.hpp>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace alumia::oauth {

// A callback refused before its flow was touched: nothing is stored for it, and its page is one of
// these fixed ones.
enum class CallbackRefusal {
  none,
  unknown_state,  // unknown, used or expired state (or none)
  other_browser,  // a live flow, but the browser lacks the cookie set where the flow started
};

struct CallbackOutcome {
  bool ok = false;
  std::string result;  // "success" | "error"
  std::string connection_id;
  std::string message;  // human text; never a token
  CallbackRefusal refusal = CallbackRefusal::none;
};

// The fixed outcome of a refusal, its name in the result page's URL (?refused=NAME), and back.
CallbackOutcome refusal_outcome(CallbackRefusal refusal);
std::string_view refusal_name(CallbackRefusal refusal);
std::optional<CallbackRefusal> parse_refusal(std::string_view name);

// Redeeming a ticket (or a key) starts a flow: the provider's authorize URL, and the cookie that binds
// the flow to the browser that receives it.
struct FlowStart {
  std::string authorize_url;
  std::string set_cookie;  // the value of a Set-Cookie header
};

struct AccessToken {
  SecretBytes access_token;
  std::string token_type;
  std::optional<int64_t> expires_at;
  std::vector<std::string> scopes;
};

struct RevocationOutcome {
  bool attempted = false;
  bool ok = false;
  std::string detail;
};

// OAUTH.md §3.4 and SPEC §6: the refresh margin. A token is due within 10 minutes of its expiry, or,
// when its lifetime (from the last refresh, else the last update) is under 20 minutes, past half of it.
// No expiry: never due. The worker refreshes what is due, and a token read refreshes first from the
// same point, so a token just refreshed is never due again at once (an earlier rule, "refresh when it
// expires within a minute", refreshed a 60-s token on every read).
bool refresh_due(const Connection& c, int64_t now_ms);

struct FlowServiceDeps {
  Store& store;
  const Catalog& catalog;
  const Sealer& sealer;  // the tokens of connections
  const Clock& clock;
  Random& random;
  http::Client& http;  // token, revocation and account-label requests
  const OAuthClients& clients;
  ConnectionService& connections;  // disconnect: the local revoke before the provider's
  std::string redirect_base;       // where the callback is served (trailing '/' dropped)
};

class FlowService {
 public:
  // oauthUrls must point at redirect_base() (ConnectionService::set_oauth_base): the ticket must be
  // redeemed on the callback's origin for the binding cookie to reach the callback.
  explicit FlowService(FlowServiceDeps deps);
  ~FlowService();
  FlowService(const FlowService&) = delete;
  FlowService& operator=(const FlowService&) = delete;

  // Test hook: a shorter life for pending flows (ALUMIA_OAUTH_FLOW_TTL_MS).
  void set_flow_ttl(int64_t ms) { m_flow_ttl_ms = ms; }

  const std::string& redirect_base() const { return m_redirect_base; }
  std::string redirect_uri() const { return m_redirect_base + "/api/v1/connections/oauth/callback"; }

  // Starts (or restarts) the handshake: the provider authorize URL, and a cookie holding a fresh
  // 256-bit nonce (HttpOnly, SameSite=Lax, Path = the callback's path, Max-Age = the flow's life, Secure
  // on an https redirect base). The flow, in the store, keeps only the state's and the nonce's SHA-256 and
  // the PKCE verifier sealed. Voids the connection's earlier flow.
  Result<FlowStart> begin(const Connection& c, bool select_account);
  // Handles the callback query. Checks state first (unknown/used/expired: refused, nothing kept),
  // then the binding cookie among the request's Cookie headers (missing or wrong: refused, and the
  // flow stays for the browser that started it), then consumes the flow (one DELETE … RETURNING: of two
  // daemons given the same callback one proceeds, the other refuses). Refusals are logged at most once per
  // 10 s per kind (per daemon), with a count of the ones in between. A store that fails gives an error
  // outcome that says to try again.
  CallbackOutcome complete(const std::multimap<std::string, std::string>& query, const http::Headers& headers);
  // The Set-Cookie value that removes the binding cookie of a connection's finished flow.
  std::string clear_cookie(std::string_view connection_id) const;
  static std::string cookie_name(std::string_view connection_id);

  // A fresh access token, refreshed first when refresh_due() says so. Concurrent reads share one
  // refresh: one refresh per connection at a time, and a read that waited for another's refresh uses
  // its token.
  Result<AccessToken> access_token(const Connection& c);
  // The worker's refresh: under the connection's lock, only if still due. Transient failures come
  // back as SERVICE_UNAVAILABLE and leave the connection as it was.
  Status refresh_if_due(const std::string& connection_id);
  // Soft-deletes the connection (secrets destroyed, WAL checkpointed), then revokes at the provider.
  Result<RevocationOutcome> disconnect(const Caller& caller, std::string_view id);

  // The callback 303s to a clean result URL so the code leaves the browser history; the outcome of a
  // consumed flow waits there (in the store, under the id's hash, 10 minutes; any daemon shows it) under a
  // random id. Refusals are not remembered: their URL names the fixed page (?refused=NAME), so a flood of
  // bogus callbacks costs no storage.
  Result<std::string> remember(const CallbackOutcome& outcome);
  Result<std::optional<CallbackOutcome>> recall(std::string_view id);
  std::size_t results_held();  // outcomes waiting to be shown (tests; 0 when the store fails)

  // Background refresh: tokens expiring within 10 minutes (half the lifetime for short ones).
  void start_worker(std::chrono::milliseconds interval);
  void stop_worker();

 private:
  // At most one log line per window for a kind of refused callback; the next line counts the rest.
  struct LogLimiter {
    int64_t next_ms = 0;
    uint64_t suppressed = 0;
    // nullopt: stay silent; else how many were suppressed since the last line.
    std::optional<uint64_t> allow(int64_t now_ms);
  };
  bool bound_to_browser(const OAuthFlowRecord& flow, const http::Headers& headers) const;
  std::string cookie_attributes(int64_t max_age_s) const;

  Result<TokenSet> token_request(const Connector& connector,
                                 const std::vector<std::pair<std::string, std::string>>& form);
  Status store_tokens(Connection& c, const Connector& connector, const TokenSet& tokens, int64_t sent_at_ms,
                      bool keep_old_refresh);
  std::string read_account_label(const Connector& connector, const TokenSet& tokens);
  Status refresh_locked(Connection& c);
  std::shared_ptr<std::mutex> connection_mutex(const std::string& id);
  RevocationOutcome revoke_at_provider(const Connector& connector, const std::optional<std::string>& access_token,
                                       const std::optional<std::string>& refresh_token);
  Result<std::map<std::string, std::string>> open_tokens(const Connection& c);
  void worker_loop(std::chrono::milliseconds interval);

  FlowServiceDeps m_d;
  std::string m_redirect_base;
  int64_t m_flow_ttl_ms = 10 * 60 * 1000;
  std::mutex m_log_mutex;
  LogLimiter m_unknown_state_log;  // guarded by m_log_mutex
  LogLimiter m_other_browser_log;  // guarded by m_log_mutex
  std::string m_cookie_path;       // the callback's path as the browser sees it
  bool m_cookie_secure = false;
  std::mutex m_locks_mutex;
  std::map<std::string, std::shared_ptr<std::mutex>> m_locks;
  std::mutex m_worker_mutex;
  std::condition_variable m_worker_cv;
  bool m_stop = false;
  std::thread m_worker;
  std::map<std::string, int64_t> m_backoff_until;  // connection → ms; worker thread only
  std::map<std::string, int> m_failures;
};

}  // namespace alumia::oauth
