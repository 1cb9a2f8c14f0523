#include <alumia/base/text.hpp>
#include <alumia/connections/core.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/net/url.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>

namespace alumia {
namespace {

using nlohmann::json;
constexpr int64_t k_ticket_ttl_ms = 10 * 60 * 1000;
constexpr int64_t k_touch_interval_ms = 60 * 1000;

std::optional<std::string> opt_time(const std::optional<int64_t>& t) {
  if (!t) return std::nullopt;
  return format_time_ms(*t);
}

json time_or_null(const std::optional<int64_t>& t) {
  auto s = opt_time(t);
  return s ? json(*s) : json(nullptr);
}

Result<std::string> string_field(const json& body, const char* name, bool required) {
  if (!body.contains(name) || body[name].is_null()) {
    if (required) return fail(ErrorCode::bad_request, std::string("missing field '") + name + "'");
    return std::string();
  }
  if (!body[name].is_string())
    return fail(ErrorCode::bad_request, std::string("field '") + name + "' must be a string");
  return body[name].get<std::string>();
}

}  // namespace

bool is_well_formed_api_key(std::string_view key) {
  static const std::regex k_re("^alm_(live|test)_[0-9a-f]{48}$");
  return std::regex_match(key.begin(), key.end(), k_re);
}

std::string api_key_prefix(std::string_view key) {
  const auto us = key.find('_', 4);
  if (us == std::string_view::npos) return std::string(key.substr(0, 8));
  return std::string(key.substr(0, std::min(key.size(), us + 1 + 4)));
}

bool is_uuid(std::string_view s) {  // 8-4-4-4-12 lowercase hex (on the receiver's hot path: no regex)
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<std::string> Core::issue_key(const std::string& user_id, const std::string& name, unsigned scopes) {
  std::string plain = "alm_" + m_d.key_env + "_" + m_d.random.hex(24);
  ApiKeyRecord k;
  k.id = m_d.random.uuid_v4();
  k.user_id = user_id;
  k.name = name;
  k.prefix = api_key_prefix(plain);
  k.hash = crypto::sha256(plain);
  k.scopes = scopes;
  k.created_at = m_d.clock.now_ms();
  if (auto st = m_d.store.insert_api_key(k); !st) return std::unexpected(st.error());
  return plain;
}

Result<std::optional<std::string>> Core::bootstrap_owner() {
  auto owner = m_d.store.first_user();
  if (!owner) return std::unexpected(owner.error());
  if (*owner) return std::optional<std::string>();
  User u{m_d.random.uuid_v4(), "owner", m_d.clock.now_ms()};
  if (auto st = m_d.store.insert_user(u); !st) return std::unexpected(st.error());
  auto key = issue_key(u.id, "owner (local key file)", k_all_scopes);
  if (!key) return std::unexpected(key.error());
  return std::optional<std::string>(*key);
}

Result<Caller> Core::authenticate(const std::optional<std::string>& authorization) {
  const std::string how = " — send 'Authorization: Bearer alm_" + m_d.key_env +
                          "_…' (the CLI reads the key file automatically; ALUMIA_API_KEY overrides it)";
  if (!authorization) return fail(ErrorCode::unauthorized, "missing API key" + how);
  std::string_view v = *authorization;
  if (v.size() < 7 || http::to_lower(v.substr(0, 7)) != "bearer ")
    return fail(ErrorCode::unauthorized, "the Authorization header is not a Bearer key" + how);
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (!is_well_formed_api_key(v)) return fail(ErrorCode::unauthorized, "malformed API key" + how);
  if (v.substr(4, m_d.key_env.size()) != m_d.key_env)
    return fail(ErrorCode::unauthorized,
                "this daemon runs with --env " + m_d.key_env + " and takes only alm_" + m_d.key_env + "_ keys");
  const std::string hash = crypto::sha256(v);
  auto rec = m_d.store.find_api_key_by_hash(hash);
  if (!rec) return std::unexpected(rec.error());
  if (!*rec || !crypto::equal_ct((*rec)->hash, hash)) return fail(ErrorCode::unauthorized, "invalid API key" + how);
  if ((*rec)->revoked_at)
    return fail(ErrorCode::unauthorized,
                "this API key was revoked; create a new one with `alumia-connect keys create`");
  auto user = m_d.store.find_user((*rec)->user_id);
  if (!user) return std::unexpected(user.error());
  if (!*user) return fail(ErrorCode::unauthorized, "the key's user no longer exists");
  const int64_t now = m_d.clock.now_ms();
  bool touch = false;
  {
    std::lock_guard lock(m_touch_mutex);
    auto& last = m_last_touch[(*rec)->id];
    if (now - last >= k_touch_interval_ms) {
      last = now;
      touch = true;
    }
  }
  if (touch) {
    (void)m_d.store.touch_api_key((*rec)->id, now);
    (*rec)->last_used_at = now;
  }
  return Caller{**user, **rec};
}

json Core::api_key_json(const ApiKeyRecord& k) {
  return json{{"id", k.id},
              {"name", k.name},
              {"prefix", k.prefix},
              {"scopes", scope_names(k.scopes)},
              {"createdAt", format_time_ms(k.created_at)},
              {"lastUsedAt", time_or_null(k.last_used_at)},
              {"revokedAt", time_or_null(k.revoked_at)}};
}

Result<std::vector<ApiKeyRecord>> Core::list_api_keys(const Caller& caller) {
  return m_d.store.list_api_keys(caller.user.id);
}

Result<std::pair<ApiKeyRecord, std::string>> Core::create_api_key(const Caller& caller, const json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  auto name = string_field(body, "name", false);
  if (!name) return std::unexpected(name.error());
  if (auto st = check_no_control_characters(*name, "name"); !st) return std::unexpected(st.error());
  if (name->size() > 100) return fail(ErrorCode::validation_error, "name must be at most 100 characters");
  unsigned scopes = static_cast<unsigned>(Scope::connections);
  if (body.contains("scopes")) {
    if (!body["scopes"].is_array()) return fail(ErrorCode::bad_request, "field 'scopes' must be an array of strings");
    scopes = 0;
    for (const auto& s : body["scopes"]) {
      if (!s.is_string()) return fail(ErrorCode::bad_request, "field 'scopes' must be an array of strings");
      auto sc = parse_scope(s.get<std::string>());
      if (!sc)
        return fail(ErrorCode::validation_error,
                    "unknown scope '" + s.get<std::string>() + "' (connections, tokens, webhooks, admin)");
      scopes |= static_cast<unsigned>(*sc);
    }
    if (scopes == 0) return fail(ErrorCode::validation_error, "a key needs at least one scope");
  }
  // A key cannot grant more than its creator holds.
  if ((scopes & ~caller.key.scopes) != 0)
    return fail(ErrorCode::forbidden, "a key can only grant scopes its creator holds");
  auto plain = issue_key(caller.user.id, name->empty() ? "unnamed" : *name, scopes);
  if (!plain) return std::unexpected(plain.error());
  auto rec = m_d.store.find_api_key_by_hash(crypto::sha256(*plain));
  if (!rec) return std::unexpected(rec.error());
  if (!*rec) return fail(ErrorCode::internal, "the new key was not stored");
  return std::make_pair(**rec, *plain);
}

Status Core::revoke_api_key(const Caller& caller, std::string_view id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + std::string(id) + "' is not a key id (UUID)");
  auto rec = m_d.store.find_api_key(id);
  if (!rec) return std::unexpected(rec.error());
  if (!*rec || (*rec)->user_id != caller.user.id) return fail(ErrorCode::not_found, "no API key " + std::string(id));
  const ApiKeyRecord& target = **rec;
  if (const unsigned lacking = target.scopes & ~caller.key.scopes; lacking != 0) {
    std::string names;
    for (const auto& n : scope_names(lacking)) names += (names.empty() ? "'" : "', '") + n;
    return fail(ErrorCode::forbidden, "API key " + std::string(id) + " holds " + names +
                                          "', which this key lacks; revoke it with a key that holds every scope it "
                                          "holds (the owner key in the key file holds all)");
  }
  std::lock_guard lock(m_revoke_mutex);
  if (target.id == caller.key.id) {
    // Revoking itself: another active key must keep every scope this one holds, or the user would
    // lose it (and, for admin, key management) until the key file is deleted and the daemon restarted.
    auto keys = m_d.store.list_api_keys(caller.user.id);
    if (!keys) return std::unexpected(keys.error());
    const bool covered = std::ranges::any_of(*keys, [&](const ApiKeyRecord& k) {
      return k.id != target.id && !k.revoked_at && (target.scopes & ~k.scopes) == 0;
    });
    if (!covered) {
      std::string how;
      for (const auto& n : scope_names(target.scopes)) how += " --scope " + n;
      return fail(ErrorCode::conflict, "API key " + std::string(id) +
                                           " is the only key holding all of its scopes and cannot revoke itself; "
                                           "create its replacement first (`alumia-connect keys create" +
                                           how + "`), then revoke it");
    }
  }
  auto changed = m_d.store.revoke_api_key(id, m_d.clock.now_ms());
  if (!changed) return std::unexpected(changed.error());
  if (!*changed) return fail(ErrorCode::conflict, "API key " + std::string(id) + " is already revoked");
  return {};
}

bool Core::configured(const Connector& c) const {
  if (c.auth_type != AuthType::oauth) return true;
  auto client = oauth_client(c);
  return client && client->has_value();
}

json Core::connector_json(const Connector& c) const { return connector_to_api_json(c, configured(c)); }

Result<std::optional<Core::OAuthClient>> Core::oauth_client(const Connector& c) const {
  const auto names = oauth_client_env_names(c.slug);
  auto id = m_d.env(names.client_id);
  auto secret = m_d.env(names.client_secret);
  if (id && secret) return std::optional<OAuthClient>(OAuthClient{*id, SecretBytes(*secret)});
  auto stored = m_d.store.load_secrets("oauth_clients", c.slug);
  if (!stored) return std::unexpected(stored.error());
  std::optional<std::string> sid;
  std::optional<SecretBytes> ssecret;
  for (const auto& v : *stored) {
    auto opened = m_d.sealer.open(v.blob, "oauth_clients", c.slug, v.field);
    if (!opened) return std::unexpected(opened.error());
    if (v.field == "client_id") sid = opened->str();
    if (v.field == "client_secret") ssecret = std::move(*opened);
  }
  if (sid && ssecret) return std::optional<OAuthClient>(OAuthClient{*sid, std::move(*ssecret)});
  return std::optional<OAuthClient>();
}

Status Core::set_oauth_client(const Connector& c, const std::string& client_id, std::string_view client_secret) {
  if (c.auth_type != AuthType::oauth)
    return fail(ErrorCode::bad_request, "connector " + c.slug + " does not use OAuth");
  if (client_id.empty() || client_secret.empty())
    return fail(ErrorCode::bad_request, "client id and secret are required");
  auto sealed =
      seal_values("oauth_clients", c.slug, {{"client_id", client_id}, {"client_secret", std::string(client_secret)}});
  if (!sealed) return std::unexpected(sealed.error());
  return m_d.store.put_secrets("oauth_clients", c.slug, *sealed);
}

Status Core::unset_oauth_client(const Connector& c) { return m_d.store.delete_secrets("oauth_clients", c.slug); }

Result<std::vector<SealedValue>> Core::seal_values(std::string_view table, std::string_view row_id,
                                                   const std::map<std::string, std::string>& values) const {
  std::vector<SealedValue> out;
  for (const auto& [field, value] : values) {
    auto blob = m_d.sealer.seal(value, table, row_id, field);
    if (!blob) return std::unexpected(blob.error());
    out.push_back({field, std::move(*blob)});
  }
  return out;
}

std::string Core::credential_submit_url(const Connection& c) const {
  return m_d.control_url + "/api/v1/connections/" + c.id + "/credentials";
}

std::string Core::issue_ticket(const Connection& c, unsigned scopes) {
  std::string ticket = m_d.random.base64url(32);
  const int64_t now = m_d.clock.now_ms();
  std::lock_guard lock(m_ticket_mutex);
  std::erase_if(m_tickets, [&](const auto& kv) {
    return kv.second.connection_id == c.id || kv.second.expires_at_ms <= now;  // a new ticket voids the old ones
  });
  m_tickets[crypto::sha256(ticket)] = Ticket{c.id, c.user_id, scopes, now + k_ticket_ttl_ms};
  return ticket;
}

std::optional<Core::TicketGrant> Core::redeem_ticket(std::string_view ticket, std::string_view connection_id) {
  const int64_t now = m_d.clock.now_ms();
  std::lock_guard lock(m_ticket_mutex);
  auto it = m_tickets.find(crypto::sha256(ticket));
  if (it == m_tickets.end()) return std::nullopt;
  const Ticket t = it->second;
  if (t.connection_id != connection_id) return std::nullopt;  // bound to its connection; not consumed by a wrong use
  m_tickets.erase(it);
  if (t.expires_at_ms <= now) return std::nullopt;
  return TicketGrant{t.user_id, t.scopes};
}

std::string Core::oauth_url(const Caller& caller, const Connection& c) {
  const std::string& base = m_oauth_base.empty() ? m_d.control_url : m_oauth_base;
  return base + "/api/v1/connections/" + c.id + "/oauth?ticket=" + issue_ticket(c, caller.key.scopes);
}

json Core::connection_json(const Connection& c) const {
  json err = nullptr;
  if (c.error) err = json{{"code", c.error->code}, {"message", c.error->message}};
  return json{{"id", c.id},
              {"connectorSlug", c.connector_slug},
              {"label", c.label},
              {"authType", c.auth_type},
              {"status", to_string(c.status)},
              {"accountLabel", c.account_label.empty() ? json(nullptr) : json(c.account_label)},
              {"scopes", c.scopes},
              {"expiresAt", time_or_null(c.expires_at)},
              {"lastRefreshedAt", time_or_null(c.last_refreshed_at)},
              {"error", err},
              {"createdAt", format_time_ms(c.created_at)},
              {"updatedAt", format_time_ms(c.updated_at)},
              {"deletedAt", time_or_null(c.deleted_at)}};
}

Result<PageResult<Connection>> Core::list_connections(const Caller& caller, const ConnectionFilter& filter,
                                                      const Page& page) {
  ConnectionFilter f = filter;
  f.user_id = caller.user.id;
  return m_d.store.list_connections(f, page);
}

Result<StartResult> Core::start_connection(const Caller& caller, const json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object {connectorSlug, label?}");
  auto slug = string_field(body, "connectorSlug", true);
  if (!slug) return std::unexpected(slug.error());
  auto label = string_field(body, "label", false);
  if (!label) return std::unexpected(label.error());
  if (auto st = check_no_control_characters(*label, "label"); !st) return std::unexpected(st.error());
  if (label->empty()) *label = "default";
  if (label->size() > 100) return fail(ErrorCode::validation_error, "label must be at most 100 characters");
  const Connector* conn = m_d.catalog.find(*slug);
  if (!conn)
    return fail(ErrorCode::bad_request, "unknown connector '" + *slug + "'; see `alumia-connect connectors list`");
  if (conn->availability != Availability::available)
    return fail(ErrorCode::bad_request, "connector " + *slug + " is not available: " + conn->availability_reason);
  if (conn->auth_type == AuthType::oauth && !configured(*conn)) {
    const auto names = oauth_client_env_names(conn->slug);
    return fail(ErrorCode::bad_request, "connector " + *slug + " has no OAuth client configured; set " +
                                            names.client_id + " and " + names.client_secret +
                                            ", or run `alumia-connect oauth-client set " + *slug + "`");
  }
  auto existing = m_d.store.find_connection_by_label(caller.user.id, *slug, *label);
  if (!existing) return std::unexpected(existing.error());
  const bool api_key = conn->auth_type == AuthType::api_key;
  StartResult r;
  if (*existing && (*existing)->status == ConnectionStatus::active) {
    r.connection = **existing;
    r.created = false;
    if (api_key) r.credential_submit_url = credential_submit_url(r.connection);
    return r;
  }
  const int64_t now = m_d.clock.now_ms();
  if (*existing && (*existing)->status == ConnectionStatus::pending) {
    r.connection = **existing;  // reuse: retries do not pile up pending records
    r.connection.updated_at = now;
    if (auto st = m_d.store.update_connection(r.connection, nullptr); !st) return std::unexpected(st.error());
  } else {
    Connection c;
    c.id = m_d.random.uuid_v4();
    c.user_id = caller.user.id;
    c.connector_slug = conn->slug;
    c.label = *label;
    c.auth_type = std::string(to_string(conn->auth_type));
    c.status = conn->auth_type == AuthType::none ? ConnectionStatus::active : ConnectionStatus::pending;
    c.created_at = c.updated_at = now;
    if (auto st = m_d.store.insert_connection(c); !st) return std::unexpected(st.error());
    r.connection = c;
  }
  r.created = true;
  if (conn->auth_type == AuthType::oauth) r.oauth_url = oauth_url(caller, r.connection);
  if (api_key) r.credential_submit_url = credential_submit_url(r.connection);
  return r;
}

Result<Connection> Core::get_connection(const Caller& caller, std::string_view id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + std::string(id) + "' is not a connection id (a UUID)");
  auto c = m_d.store.find_connection(id);
  if (!c) return std::unexpected(c.error());
  if (!*c || (*c)->user_id != caller.user.id || (*c)->deleted_at)
    return fail(ErrorCode::not_found, "no connection " + std::string(id));
  return **c;
}

Result<json> Core::revoke_connection(const Caller& caller, std::string_view id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + std::string(id) + "' is not a connection id (a UUID)");
  auto found = m_d.store.find_connection(id);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->user_id != caller.user.id)
    return fail(ErrorCode::not_found, "no connection " + std::string(id));
  Connection c = **found;
  if (c.deleted_at) return fail(ErrorCode::conflict, "connection " + c.id + " is already revoked");
  const int64_t now = m_d.clock.now_ms();
  c.status = ConnectionStatus::revoked;
  c.deleted_at = now;
  c.updated_at = now;
  if (auto st = m_d.store.destroy_connection(c); !st) return std::unexpected(st.error());
  spdlog::info("connection {} ({}) revoked; secrets destroyed", c.id, c.connector_slug);
  return json{{"deleted", true}, {"providerRevocation", json{{"attempted", false}, {"reason", "no provider tokens"}}}};
}

Result<std::map<std::string, std::string>> Core::credential_values(const Connection& c) {
  auto stored = m_d.store.load_secrets("connections", c.id);
  if (!stored) return std::unexpected(stored.error());
  std::map<std::string, std::string> out;
  for (const auto& v : *stored) {
    if (v.field.rfind("cred.", 0) != 0) continue;
    auto opened = m_d.sealer.open(v.blob, "connections", c.id, v.field);
    if (!opened) return std::unexpected(opened.error());
    out[v.field.substr(5)] = opened->str();
  }
  return out;
}

Result<json> Core::run_live_check(const Connector& connector, const std::map<std::string, std::string>& values) {
  const LiveCheck& lc = *connector.live_check;
  StringMap vars;
  for (const auto& [k, v] : values) vars[k] = v;
  if (connector.api_base) {
    auto base = resolve_api_base(connector, m_d.env);
    if (!base) return std::unexpected(base.error());
    vars["apiBase"] = *base;
  }
  http::OutboundRequest req;
  req.method = lc.method;
  req.url = expand_template(lc.url, vars);
  for (const auto& [k, v] : connector.api_headers) req.headers.emplace_back(k, expand_template(v, vars));
  for (const auto& [k, v] : lc.headers) req.headers.emplace_back(k, expand_template(v, vars));
  if (lc.basic_auth) {
    const std::string user = expand_template(lc.basic_auth->username, vars);
    std::string pass = expand_template(lc.basic_auth->password, vars);
    req.headers.emplace_back("Authorization", "Basic " + encoding::base64_encode(user + ":" + pass));
    wipe_string(pass);
  }
  req.headers.emplace_back("Accept", "application/json");
  req.timeout = std::chrono::seconds(10);
  auto resp = m_d.http.send(req);
  for (auto& [k, v] : vars) wipe_string(v);
  wipe_string(req.url);
  if (!resp)
    return fail(ErrorCode::service_unavailable,
                connector.name + " could not be reached to check the credentials: " + resp.error().message);
  const auto doc = json::parse(resp->body, nullptr, false);
  bool ok = resp->status >= 200 && resp->status < 300 && !doc.is_discarded();
  if (ok && !lc.success_pointer.empty()) {
    const auto ptr = json::json_pointer(lc.success_pointer);
    ok = doc.contains(ptr) && doc.at(ptr) == lc.success_value;
  }
  if (!ok) {
    std::string why = "HTTP " + std::to_string(resp->status);
    if (!doc.is_discarded() && doc.is_object() && doc.contains("description") && doc["description"].is_string())
      why += ": " + doc["description"].get<std::string>().substr(0, 200);
    return fail(ErrorCode::validation_error, connector.name + " rejected the credentials (" + why + ")");
  }
  return doc;
}

Result<Connection> Core::submit_credentials(const Caller& caller, std::string_view id, const json& body) {
  auto got = get_connection(caller, id);
  if (!got) return std::unexpected(got.error());
  Connection c = *got;
  const Connector* connector = m_d.catalog.find(c.connector_slug);
  if (!connector) return fail(ErrorCode::conflict, "connector " + c.connector_slug + " is no longer in the catalog");
  if (connector->auth_type != AuthType::api_key)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not take credentials (authType " +
                                            std::string(to_string(connector->auth_type)) + ")");
  if (c.status == ConnectionStatus::revoked) return fail(ErrorCode::conflict, "connection is revoked");
  if (!body.is_object() || !body.contains("values") || !body["values"].is_object())
    return fail(ErrorCode::bad_request, "body must be {\"values\": {field: value, ...}}");
  std::map<std::string, std::string> values;
  for (const auto& [k, v] : body["values"].items()) {
    const CredentialField* f = connector->find_field(k);
    if (!f) return fail(ErrorCode::validation_error, "unknown field '" + k + "' for " + connector->slug);
    if (!v.is_string()) return fail(ErrorCode::bad_request, "value of '" + k + "' must be a string");
    values[k] = v.get<std::string>();
  }
  for (const auto& f : connector->credential_fields) {
    auto it = values.find(f.key);
    if (it == values.end() || it->second.empty()) {
      if (f.required) return fail(ErrorCode::validation_error, "field '" + f.key + "' (" + f.label + ") is required");
      if (it != values.end()) values.erase(it);
      continue;
    }
    if (!credential_value_matches(f, it->second))
      return fail(ErrorCode::validation_error, "field '" + f.key + "' (" + f.label +
                                                   ") does not have the expected format" +
                                                   (f.placeholder ? " (e.g. " + *f.placeholder + ")" : std::string()));
  }
  std::string account = c.account_label;
  if (connector->live_check) {
    auto doc = run_live_check(*connector, values);
    if (!doc) {
      for (auto& [k, v] : values) wipe_string(v);
      return std::unexpected(doc.error());
    }
    auto label = extract_label(connector->live_check->account_label, *doc);
    if (!label.empty()) account = label;
  }
  std::map<std::string, std::string> fields;
  for (auto& [k, v] : values) fields["cred." + k] = v;
  auto sealed = seal_values("connections", c.id, fields);
  for (auto& [k, v] : values) wipe_string(v);
  for (auto& [k, v] : fields) wipe_string(v);
  if (!sealed) return std::unexpected(sealed.error());
  c.status = ConnectionStatus::active;
  c.account_label = account;
  c.error.reset();
  c.updated_at = m_d.clock.now_ms();
  if (auto st = m_d.store.update_connection(c, &*sealed); !st) return std::unexpected(st.error());
  spdlog::info("connection {} ({}) credentials accepted", c.id, c.connector_slug);
  return c;
}

}  // namespace alumia
