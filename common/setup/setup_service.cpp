// The setup command's one run (setup_service.hpp): local checks first, then the provider's registrar,
// then what it answered stored on the connection's endpoint.
#include <alumia/base/text.hpp>
#include <alumia/base/try.hpp>
#include <alumia/net/url.hpp>
#include <alumia/setup/setup_service.hpp>

#include <spdlog/spdlog.h>

namespace alumia::setup {
namespace {

using nlohmann::json;

// What to do about a connection that is not active, in its own words.
Error not_active(const Connection& c) {
  std::string next;
  switch (c.status) {
    case ConnectionStatus::pending:
      next = c.auth_type == AuthType::api_key ? "finish it with `alumia-connect credentials " + c.id + "`"
                                              : "finish it with `alumia-connect connect --reconnect " + c.id + "`";
      break;
    case ConnectionStatus::revoked:
      next = "start a new one with `alumia-connect connect " + c.connector_slug + "`";
      break;
    default:
      next = c.auth_type == AuthType::api_key ? "update its credentials with `alumia-connect credentials " + c.id + "`"
                                              : "reconnect it with `alumia-connect connect --reconnect " + c.id + "`";
  }
  return Error{ErrorCode::conflict,
               "connection " + c.id + " is " + std::string(to_string(c.status)) + ", not active; " + next, 0};
}

std::string endpoint_label(const Connection& c) {
  std::string label = c.connector_slug + " " + c.label + " (setup-webhook)";
  if (label.size() > 200 || !check_no_control_characters(label, "label")) label = "setup-webhook of " + c.id;
  return label;
}

std::string receive_url_on(const std::string& base, const WebhookEndpointRecord& e) {
  return base + "/api/v1/connectors/webhooks/" + std::string(to_string(e.provider)) + "/" + e.id;
}

}  // namespace

Result<std::string> SetupService::judged_base_url(const SetupOptions& options,
                                                  std::vector<std::string>& warnings) const {
  // Messages name where the URL came from and the rule, never the URL's text (it may hold userinfo).
  if (!options.base_url) {
    if (m_d.webhook_base_url.empty())
      return fail(ErrorCode::validation_error,
                  "no public base URL to register: set CONNECTOR_WEBHOOK_BASE_URL (or webhookBaseUrl in config.json) "
                  "or pass --base-url https://your.public.host");
    if (!m_d.base_url_warning.empty()) warnings.push_back(m_d.base_url_warning);
    return m_d.webhook_base_url;
  }
  auto judged = url::judge_base_url(*options.base_url, m_d.allow_insecure_base_url);
  if (!judged)
    return fail(
        ErrorCode::validation_error,
        "--base-url is refused: " + judged.error().message +
            (m_d.allow_insecure_base_url ? "" : " (--allow-insecure-base-url lifts this rule, for development only)"));
  if (!judged->broken_rule.empty())
    // Development only, and said so on every use: the provider will be told to deliver there.
    warnings.push_back("--base-url is not a safe public base URL (" + judged->broken_rule +
                       "); used anyway because of --allow-insecure-base-url, for development only");
  return std::move(judged->url);
}

Result<SecretBytes> SetupService::open_credential(const Connection& c, const Connector& connector) {
  if (c.auth_type == AuthType::oauth) {
    auto token = TRY(m_d.oauth.access_token(c));
    return std::move(token.access_token);
  }
  auto values = TRY(m_d.connections.credential_values(c));
  SecretBytes out;
  for (const CredentialField& f : connector.credential_fields)
    if (f.secret)
      if (auto it = values.find(f.key); it != values.end() && !it->second.empty()) {
        out = SecretBytes(it->second);
        break;
      }
  for (auto& [k, v] : values) wipe_string(v);
  if (out.empty())
    return fail(ErrorCode::conflict, "connection " + c.id + " holds no secret credential to call " + connector.name +
                                         " with; set it with `alumia-connect credentials " + c.id + "`");
  return out;
}

Result<SetupResult> SetupService::run(const Caller& caller, std::string_view connection_id,
                                      const SetupOptions& options) {
  // One run at a time: two concurrent runs for one connection would both find no endpoint and make two.
  // Setup commands are rare operator actions, so one lock for all is enough.
  std::lock_guard lock(m_run_mutex);
  const Connection c = TRY(m_d.connections.get(caller, connection_id));
  const Connector* connector = m_d.catalog.find(c.connector_slug);
  const Registrar* registrar = connector && connector->webhook ? find_registrar(connector->webhook->provider) : nullptr;
  if (!registrar)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " has no setup-webhook command");
  const Provider provider = registrar->provider();
  const std::string provider_name(to_string(provider));
  if (options.remove && options.rotate_secret)
    return fail(ErrorCode::bad_request, "--rotate-secret and --remove do not go together: remove, or rotate");
  if (options.rotate_secret && !registrar->generates_secret())
    return fail(ErrorCode::bad_request,
                provider_name +
                    " issues the endpoint's signing secret itself, so setup-webhook cannot rotate it: roll it at " +
                    provider_name +
                    " (Stripe: Dashboard > Developers > Webhooks > the endpoint > Roll secret), then store the "
                    "new one with `alumia-connect webhooks rotate-secret ENDPOINT --secret-from-stdin`");
  TRY(registrar->check(options));
  if (c.status != ConnectionStatus::active) return std::unexpected(not_active(c));

  SetupResult out;
  out.connection_id = c.id;
  const std::string base = TRY(judged_base_url(options, out.warnings));
  const std::string api_base = TRY(resolve_api_base(*connector, m_d.env));

  auto found = TRY(m_d.webhooks.find_connection_endpoint(caller, c.id, provider));
  if (options.remove) {
    if (!found)
      return fail(ErrorCode::not_found, "connection " + c.id + " has no " + provider_name +
                                            " endpoint made by setup-webhook: nothing to remove");
    const json cfg = json::parse(found->config, nullptr, false);
    if (!cfg.is_object() || !cfg.contains("registration"))
      return fail(ErrorCode::not_found, "endpoint " + found->id + " of connection " + c.id +
                                            " is not registered with " + provider_name + ": nothing to remove");
  }
  SecretBytes credential = TRY(open_credential(c, *connector));

  WebhookEndpointRecord endpoint;
  if (found) {
    endpoint = std::move(*found);
  } else {
    auto created = TRY(m_d.webhooks.create_setup_endpoint(caller, c.id, provider, endpoint_label(c)));
    endpoint = std::move(created.endpoint);
    out.relay_secret = std::move(created.relay_secret);
    out.endpoint_created = true;
  }
  out.receive_url = receive_url_on(base, endpoint);

  SecretBytes secret;
  if (options.rotate_secret) secret = m_d.webhooks.fresh_secret(provider);
  else secret = TRY(m_d.webhooks.current_secret(caller, endpoint.id));
  const json cfg = json::parse(endpoint.config, nullptr, false);
  RegistrarContext ctx{
      .connection_id = c.id,
      .receive_url = out.receive_url,
      .api_base = api_base,
      .credential = std::move(credential),
      .secret = secret,
      .previous = cfg.is_object() && cfg.contains("registration") ? cfg["registration"] : json(nullptr),
      .http = m_d.http,
      .random = m_d.random};

  if (options.remove) {
    Registration reg = TRY(registrar->remove(ctx, options));
    TRY(m_d.webhooks.set_registration(caller, endpoint.id, reg.still_registered ? reg.state : json(nullptr)));
    if (!reg.still_registered) {
      UpdateEndpointRequest disable;
      disable.status = "disabled";
      TRY(m_d.webhooks.update_endpoint(caller, endpoint.id, disable));
    }
    out.removed = true;
    out.report = std::move(reg.report);
    spdlog::info("setup-webhook: endpoint {} of connection {} removed from {}", endpoint.id, c.id, provider_name);
  } else {
    auto applied = registrar->apply(ctx, options);
    if (!applied) {
      // An endpoint made for this run and registered nowhere goes again, so that the next run makes
      // (and shows the relay secret of) a fresh one instead of reusing one whose relay secret nobody saw.
      if (out.endpoint_created)
        if (auto gone = m_d.webhooks.delete_endpoint(caller, endpoint.id); !gone)
          spdlog::warn("setup-webhook: endpoint {} made for a failed registration is left: {}", endpoint.id,
                       gone.error().message);
      return std::unexpected(applied.error());
    }
    Registration reg = std::move(*applied);
    // What the provider now holds is stored first: a failure below leaves a re-run to finish the job.
    TRY(m_d.webhooks.set_registration(caller, endpoint.id, reg.state));
    bool has_secret = !secret.empty();
    if (reg.issued_secret && !reg.issued_secret->empty() && reg.issued_secret->view() != secret.view()) {
      RotateSecretRequest rotate;
      rotate.secret = std::move(*reg.issued_secret);
      if (secret.empty()) rotate.grace_seconds = 0;  // nothing to keep verifying
      TRY(m_d.webhooks.rotate_secret(caller, endpoint.id, std::move(rotate)));
      has_secret = true;
    } else if (options.rotate_secret) {
      // Registered with the provider above; stored now, the old secret verifying during the grace.
      TRY(m_d.webhooks.rotate_secret(caller, endpoint.id, RotateSecretRequest{secret, std::nullopt}));
    }
    if (!has_secret) {
      out.warnings.push_back("endpoint " + endpoint.id + " has no signing secret yet, so it stays disabled; run " +
                             "setup-webhook again, or store the secret with `alumia-connect webhooks rotate-secret " +
                             endpoint.id + " --secret-from-stdin`");
    } else {
      UpdateEndpointRequest enable;
      enable.status = "active";
      TRY(m_d.webhooks.update_endpoint(caller, endpoint.id, enable));
    }
    out.report = std::move(reg.report);
    spdlog::info("setup-webhook: endpoint {} of connection {} registered with {} at {}{}", endpoint.id, c.id,
                 provider_name, out.receive_url, options.rotate_secret ? " (secret rotated)" : "");
  }
  out.endpoint = TRY(m_d.webhooks.get_endpoint(caller, endpoint.id));
  return out;
}

}  // namespace alumia::setup
