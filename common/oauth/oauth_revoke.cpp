// oauth::FlowService, disconnecting: the connection is destroyed locally first, then its grant is
// revoked at the provider in the style the catalog names (RFC 7009, GitHub, Notion, Slack, bearer).
#include <alumia/base/try.hpp>
#include "flow_internal.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::oauth {

using namespace detail;
using nlohmann::json;

RevocationOutcome FlowService::revoke_at_provider(const Connector& connector, const std::optional<std::string>& at,
                                                  const std::optional<std::string>& rt) {
  const auto& o = *connector.oauth;
  const auto& d = m_d;
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
  auto client = m_d.clients.find(connector);
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
  auto c = m_d.connections.get(caller, id);
  if (!c) {
    if (c.error().code == ErrorCode::not_found) {
      TRY(m_d.connections.revoke(caller, id));  // yields CONFLICT for a revoked one
    }
    return std::unexpected(c.error());
  }
  std::optional<std::string> at, rt;
  const Connector* connector = m_d.catalog.find(c->connector_slug);
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
  TRY(m_d.connections.revoke(caller, id));
  RevocationOutcome out;
  if (connector && connector->oauth) out = revoke_at_provider(*connector, at, rt);
  else out.detail = "no provider tokens";
  if (at) wipe_string(*at);
  if (rt) wipe_string(*rt);
  spdlog::info("connection {} disconnected; provider revocation: {}", c->id, out.detail);
  return out;
}

}  // namespace alumia::oauth
