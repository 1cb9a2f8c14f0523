#include <alumia/base/encoding.hpp>
#include <alumia/base/text.hpp>
#include <alumia/base/try.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/sealed_values.hpp>
#include <alumia/net/url.hpp>

#include <spdlog/spdlog.h>

namespace alumia {

using nlohmann::json;

std::string ConnectionService::credential_submit_url(const Connection& c) const {
  return m_d.control_url + "/api/v1/connections/" + c.id + "/credentials";
}

Result<std::string> ConnectionService::oauth_url(const Caller& caller, const Connection& c) {
  const std::string& base = m_d.oauth_base.empty() ? m_d.control_url : m_d.oauth_base;
  return base + "/api/v1/connections/" + c.id +
         "/oauth?ticket=" + TRY(m_d.tickets.issue(c.id, c.user_id, caller.key.scopes));
}

Result<PageResult<Connection>> ConnectionService::list(const Caller& caller, const ConnectionFilter& filter,
                                                       const Page& page) {
  ConnectionFilter f = filter;
  f.user_id = caller.user.id;
  return m_d.store.list_connections(f, page);
}

Result<StartResult> ConnectionService::start(const Caller& caller, const StartConnection& request) {
  const std::string& slug = request.connector_slug;
  std::string label = request.label;
  TRY(check_no_control_characters(label, "label"));
  if (label.empty()) label = "default";
  if (label.size() > 100) return fail(ErrorCode::validation_error, "label must be at most 100 characters");
  const Connector* conn = m_d.catalog.find(slug);
  if (!conn)
    return fail(ErrorCode::bad_request, "unknown connector '" + slug + "'; see `alumia-connect connectors list`");
  if (conn->availability != Availability::available)
    return fail(ErrorCode::bad_request, "connector " + slug + " is not available: " + conn->availability_reason);
  if (conn->auth_type == AuthType::oauth && !m_d.oauth_clients.configured(*conn)) {
    const auto names = oauth_client_env_names(conn->slug);
    return fail(ErrorCode::bad_request, "connector " + slug + " has no OAuth client configured; set " +
                                            names.client_id + " and " + names.client_secret +
                                            ", or pipe the secret to `alumia-connect oauth-client set " + slug +
                                            " --client-id ID`");
  }
  auto existing = TRY(m_d.store.find_connection_by_label(caller.user.id, slug, label));
  const bool api_key = conn->auth_type == AuthType::api_key;
  StartResult r;
  if (existing && existing->status == ConnectionStatus::active) {
    r.connection = *existing;
    r.created = false;
    if (api_key) r.credential_submit_url = credential_submit_url(r.connection);
    return r;
  }
  const int64_t now = m_d.clock.now_ms();
  if (existing && existing->status == ConnectionStatus::pending) {
    r.connection = *existing;  // reuse: retries do not pile up pending records
    r.connection.updated_at = now;
    TRY(m_d.store.update_connection(r.connection, nullptr));
  } else {
    Connection c;
    c.id = m_d.random.uuid_v4();
    c.user_id = caller.user.id;
    c.connector_slug = conn->slug;
    c.label = label;
    c.auth_type = conn->auth_type;
    c.status = conn->auth_type == AuthType::none ? ConnectionStatus::active : ConnectionStatus::pending;
    c.created_at = c.updated_at = now;
    TRY(m_d.store.insert_connection(c));
    r.connection = c;
  }
  r.created = true;
  if (conn->auth_type == AuthType::oauth) r.oauth_url = TRY(oauth_url(caller, r.connection));
  if (api_key) r.credential_submit_url = credential_submit_url(r.connection);
  return r;
}

Result<Connection> ConnectionService::get(const Caller& caller, std::string_view id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + std::string(id) + "' is not a connection id (a UUID)");
  auto c = TRY(m_d.store.find_connection(id));
  if (!c || c->user_id != caller.user.id || c->deleted_at)
    return fail(ErrorCode::not_found, "no connection " + std::string(id));
  return *c;
}

Status ConnectionService::revoke(const Caller& caller, std::string_view id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + std::string(id) + "' is not a connection id (a UUID)");
  auto found = TRY(m_d.store.find_connection(id));
  if (!found || found->user_id != caller.user.id) return fail(ErrorCode::not_found, "no connection " + std::string(id));
  Connection c = *found;
  if (c.deleted_at) return fail(ErrorCode::conflict, "connection " + c.id + " is already revoked");
  const int64_t now = m_d.clock.now_ms();
  c.status = ConnectionStatus::revoked;
  c.deleted_at = now;
  c.updated_at = now;
  TRY(m_d.store.destroy_connection(c));
  spdlog::info("connection {} ({}) revoked; secrets destroyed", c.id, c.connector_slug);
  return {};
}

Result<std::map<std::string, std::string>> ConnectionService::credential_values(const Connection& c) {
  auto all = TRY(open_values(m_d.sealer, m_d.store, "connections", c.id));
  std::map<std::string, std::string> out;
  for (auto& [field, value] : all) {
    if (field.rfind("cred.", 0) == 0) out[field.substr(5)] = value;
    wipe_string(value);
  }
  return out;
}

Result<json> ConnectionService::run_live_check(const Connector& connector,
                                               const std::map<std::string, std::string>& values) {
  const LiveCheck& lc = *connector.live_check;
  StringMap vars;
  for (const auto& [k, v] : values) vars[k] = v;
  if (connector.api_base) {
    auto base = TRY(resolve_api_base(connector, m_d.env));
    vars["apiBase"] = base;
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

Result<Connection> ConnectionService::submit_credentials(const Caller& caller, std::string_view id,
                                                         const SubmitCredentials& request) {
  Connection c = TRY(get(caller, id));
  const Connector* connector = m_d.catalog.find(c.connector_slug);
  if (!connector) return fail(ErrorCode::conflict, "connector " + c.connector_slug + " is no longer in the catalog");
  if (connector->auth_type != AuthType::api_key)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not take credentials (authType " +
                                            std::string(to_string(connector->auth_type)) + ")");
  if (c.status == ConnectionStatus::revoked) return fail(ErrorCode::conflict, "connection is revoked");
  std::map<std::string, std::string> values = request.values;
  for (const auto& [k, v] : values) {
    if (!connector->find_field(k)) {
      for (auto& [key, value] : values) wipe_string(value);
      return fail(ErrorCode::validation_error, "unknown field '" + k + "' for " + connector->slug);
    }
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
  auto sealed = seal_values(m_d.sealer, "connections", c.id, fields);
  for (auto& [k, v] : values) wipe_string(v);
  for (auto& [k, v] : fields) wipe_string(v);
  if (!sealed) return std::unexpected(sealed.error());
  c.status = ConnectionStatus::active;
  c.account_label = account;
  c.error.reset();
  c.updated_at = m_d.clock.now_ms();
  TRY(m_d.store.update_connection(c, &*sealed));
  spdlog::info("connection {} ({}) credentials accepted", c.id, c.connector_slug);
  return c;
}

}  // namespace alumia
