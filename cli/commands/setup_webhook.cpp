// alumia-connect setup-webhook CONNECTION [--drop-pending] [--base-url URL] [--remove] [--rotate-secret]
//   [--repo OWNER/NAME | --org ORG] [--events E,...]
// Registers the connection's webhook endpoint with its provider (SPEC §8): the daemon creates or
// reuses the endpoint, hands the provider its secret and reports what the provider now holds.
#include "app.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace alumia::cli {
namespace {

struct SetupWebhookOptions {
  std::string connection;
  std::string base_url;
  bool remove = false;
  bool rotate_secret = false;
  bool drop_pending = false;
  std::string repo;
  std::string org;
  std::vector<std::string> events;
  CLI::Option* events_option = nullptr;
};

json request_body(const SetupWebhookOptions& o) {
  json body = json::object();
  if (!o.base_url.empty()) body["baseUrl"] = o.base_url;
  if (o.remove) body["remove"] = true;
  if (o.rotate_secret) body["rotateSecret"] = true;
  if (o.drop_pending) body["dropPending"] = true;
  if (!o.repo.empty()) body["repo"] = o.repo;
  if (!o.org.empty()) body["org"] = o.org;
  if (o.events_option && o.events_option->count() > 0) body["events"] = o.events;
  return body;
}

// "pendingUpdateCount" → "pending update count": the provider's report, whatever its provider.
std::string words(const std::string& key) {
  std::string out;
  for (char ch : key) {
    if (std::isupper(static_cast<unsigned char>(ch))) {
      out += ' ';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else {
      out += ch;
    }
  }
  return out;
}

std::string report_value(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "(none)" : v.get<std::string>();
  if (v.is_array()) {
    if (v.empty()) return "(the provider's default)";
    std::string out;
    for (const auto& item : v)
      out += (out.empty() ? "" : ", ") + (item.is_string() ? item.get<std::string>() : item.dump());
    return out;
  }
  return v.dump();
}

CliStatus run_setup_webhook(CliContext& ctx, const SetupWebhookOptions& o) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->post("/api/v1/connections/" + encode_component(o.connection) + "/commands/setup-webhook",
                               request_body(o)));
  if (ctx.global.json) {
    ctx.print_data(data);
    if (data.contains("relaySecret") && data["relaySecret"].is_string())
      wipe_string(data["relaySecret"].get_ref<std::string&>());
    return {};
  }
  const json endpoint = data.contains("endpoint") && data["endpoint"].is_object() ? data["endpoint"] : json::object();
  const bool removed = jbool(data, "removed");
  std::vector<std::pair<std::string, std::string>> fields{
      {"connection", jstr(data, "connectionId")},
      {"endpoint", jstr(endpoint, "id") + (jbool(data, "endpointCreated") ? " (created)" : "")},
      {"provider", jstr(endpoint, "provider")},
      {"status", jstr(endpoint, "status")},
      {"receive url", jstr(data, "receiveUrl")}};
  if (data.contains("relaySecret") && data["relaySecret"].is_string())
    fields.emplace_back("relay secret", jstr(data, "relaySecret"));
  print_fields(ctx.out, fields);
  if (data.contains("relaySecret") && data["relaySecret"].is_string()) {
    for (auto& [k, v] : fields) wipe_string(v);
    wipe_string(data["relaySecret"].get_ref<std::string&>());
    ctx.note("The relay secret (Alumia-Signature of relayed events) is shown only this once: store it now.");
  }
  std::vector<std::pair<std::string, std::string>> report;
  if (data.contains("provider") && data["provider"].is_object())
    for (const auto& [k, v] : data["provider"].items()) report.emplace_back(words(k), report_value(v));
  if (!report.empty()) {
    ctx.out << '\n' << jstr(endpoint, "provider") << (removed ? " now reports (after removal):" : " reports:") << '\n';
    print_fields(ctx.out, report);
  }
  ctx.note(removed ? "Removed from the provider; the endpoint is " + jstr(endpoint, "status") + "."
                   : "Registered. Watch deliveries arrive with `alumia-connect events tail`.");
  return {};
}

}  // namespace

void register_setup_webhook(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<SetupWebhookOptions>();
  auto* cmd = app.add_subcommand(
      "setup-webhook", "Register a connection's webhook endpoint with its provider (telegram, github, stripe)");
  cmd->add_option("CONNECTION", o->connection, "Connection id")->required();
  cmd->add_option("--base-url", o->base_url,
                  "Public https base of the receive URL (default: CONNECTOR_WEBHOOK_BASE_URL / webhookBaseUrl)")
      ->type_name("URL");
  auto* remove = cmd->add_flag("--remove", o->remove, "Delete the provider-side webhook and disable the endpoint");
  auto* rotate =
      cmd->add_flag("--rotate-secret", o->rotate_secret,
                    "Register a fresh generated secret (telegram, github); the old one verifies during the grace");
  remove->excludes(rotate);
  cmd->add_flag("--drop-pending", o->drop_pending, "telegram: drop the updates waiting at Telegram");
  auto* repo = cmd->add_option("--repo", o->repo, "github: a repository hook on OWNER/NAME")->type_name("OWNER/NAME");
  auto* org = cmd->add_option("--org", o->org, "github: an organisation hook on ORG")->type_name("ORG");
  repo->excludes(org);
  o->events_option = cmd->add_option("--events", o->events,
                                     "Comma-separated event types (telegram allowed_updates, github events, stripe "
                                     "enabled_events; default: the provider's default set, github and stripe *)")
                         ->delimiter(',')
                         ->type_name("E,...");
  on_run(*cmd, ctx, [&ctx, o] { return run_setup_webhook(ctx, *o); });
}

}  // namespace alumia::cli
