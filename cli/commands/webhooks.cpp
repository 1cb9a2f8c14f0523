// alumia-connect webhooks list|create|show ID|update ID|delete ID [--yes]|rotate-secret ID
// Provider-issued secrets (Stripe whsec_, Slack signing secret, Meta app secret, Twilio auth token,
// Discord public key) and verify tokens come from stdin or a no-echo prompt, never from argv.
#include "credentials_util.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace alumia::cli {
namespace {

constexpr const char* k_endpoints = "/api/v1/webhook-endpoints";
constexpr int64_t k_max_body_bytes = 25 * 1024 * 1024;  // the daemon's ceiling (SPEC §7)
constexpr int64_t k_max_rate = 1'000'000;               // the daemon's ceiling of rateLimit (SPEC §7)

// --rate-limit N or N/s → N; nullopt when it is neither or out of range.
std::optional<int64_t> parse_rate(std::string text) {
  if (text.size() > 2 && text.ends_with("/s")) text.resize(text.size() - 2);
  if (text.empty() || text.size() > 7 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int64_t n = std::stoll(text);
  if (n < 1 || n > k_max_rate) return std::nullopt;
  return n;
}

const std::string k_rate_help = "must be N or N/s, from 1 to " + std::to_string(k_max_rate);

// The rateLimit member from --rate-limit and --burst (burst: the daemon's, twice the rate, when not given).
json rate_limit_member(const std::string& rate, int64_t burst) {
  json r{{"perSecond", parse_rate(rate).value_or(0)}};
  if (burst > 0) r["burst"] = burst;
  return r;
}

std::string rate_limit_text(const json& e) {
  if (!e.contains("rateLimit") || !e["rateLimit"].is_object()) return "-";
  const json& r = e["rateLimit"];
  return jdisplay(r, "perSecond") + "/s, burst " + jdisplay(r, "burst") +
         (jbool(r, "default") ? " (the daemon's default)" : "");
}

std::string endpoint_path(const std::string& id) { return std::string(k_endpoints) + "/" + encode_component(id); }

// Sends a body that holds secrets; wipes its strings and the serialized text afterwards.
CliResult<json> post_secret_body(DaemonClient& client, const std::string& path, json& body) {
  std::string text = body.dump();
  for (auto& [k, v] : body.items())
    if (v.is_string()) wipe_string(v.get_ref<std::string&>());
  auto res = client.post_raw(path, text);
  wipe_string(text);
  return res;
}

void wipe_member(json& data, const char* key) {
  if (data.is_object() && data.contains(key) && data[key].is_string()) wipe_string(data[key].get_ref<std::string&>());
}

// Why the receiver last refused a delivery (the sender only got a generic answer).
std::string last_error(const json& e) {
  if (!e.contains("lastError") || !e["lastError"].is_object()) return "-";
  const json& le = e["lastError"];
  return jstr(le, "at") + " " + jstr(le, "code") + ": " + jstr(le, "message");
}

std::vector<std::pair<std::string, std::string>> endpoint_fields(const json& e) {
  const json counts = e.contains("counts") && e["counts"].is_object() ? e["counts"] : json::object();
  const std::string status = jstr(e, "status");
  return {{"id", jstr(e, "id")},
          {"provider", jstr(e, "provider")},
          {"label", jdisplay(e, "label")},
          {"status", status},
          {"receive url", jstr(e, "receiveUrl")},
          {"relay to",
           e.contains("relayTo") && e["relayTo"].is_string() ? jstr(e, "relayTo") : "(the daemon's --relay-to)"},
          {"connection", jdisplay(e, "connectionId")},
          {"max body", jdisplay(e, "maxBodyBytes") + " bytes"},
          {"rate limit", rate_limit_text(e)},
          {"received", jdisplay(counts, "received")},
          {"duplicates", jdisplay(counts, "duplicates")},
          {"rejected", jdisplay(counts, "rejected")},
          {"bad signatures", jdisplay(counts, "verificationFailures")},
          {"rate limited", jdisplay(counts, "rateLimited")},
          {"last delivery", jdisplay(e, "lastDeliveryAt")},
          {"last error", last_error(e)},
          {"created", jdisplay(e, "createdAt")}};
}

CliStatus list(CliContext& ctx, int limit) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->get(with_query(k_endpoints, {{"limit", limit > 0 ? std::to_string(limit) : ""}})));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  Table t{{"ID", "PROVIDER", "LABEL", "STATUS", "RECEIVED", "BAD SIGNATURES", "LAST DELIVERY"}, {}};
  if (data.contains("items") && data["items"].is_array())
    for (const auto& e : data["items"]) {
      const json counts = e.contains("counts") ? e["counts"] : json::object();
      t.rows.push_back({jstr(e, "id"), jstr(e, "provider"), jdisplay(e, "label"), jstr(e, "status"),
                        jdisplay(counts, "received"), jdisplay(counts, "verificationFailures"),
                        short_time(jstr(e, "lastDeliveryAt"))});
    }
  if (t.rows.empty()) {
    ctx.note("No webhook endpoints. Create one with `alumia-connect webhooks create --provider PROVIDER`.");
    return {};
  }
  print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
    return col == 3 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
  });
  if (jbool(data, "hasMore")) ctx.note("More endpoints exist: use a larger --limit.");
  return {};
}

struct CreateOptions {
  std::string provider;
  std::string connection;
  std::string label;
  std::string relay_to;
  int64_t max_body_bytes = 0;
  std::string rate_limit;
  int64_t burst = 0;
  std::string audience;
  std::string jwks_url;
  std::string service_account_email;
  std::string bot_id;
  bool secret_from_stdin = false;
  bool verify_token_from_stdin = false;
};

CliStatus create(CliContext& ctx, const CreateOptions& o) {
  json body{{"provider", o.provider}};
  const std::pair<const char*, const std::string*> optional_fields[] = {
      {"connectionId", &o.connection},
      {"label", &o.label},
      {"relayTo", &o.relay_to},
      {"audience", &o.audience},
      {"jwksUrl", &o.jwks_url},
      {"serviceAccountEmail", &o.service_account_email},
      {"botId", &o.bot_id}};
  for (const auto& [key, value] : optional_fields)
    if (!value->empty()) body[key] = *value;
  if (o.max_body_bytes > 0) body["maxBodyBytes"] = o.max_body_bytes;
  if (!o.rate_limit.empty()) body["rateLimit"] = rate_limit_member(o.rate_limit, o.burst);
  // Secrets are read before the daemon is contacted: a missing one is a usage error, not a half-made endpoint.
  if (o.secret_from_stdin) {
    auto secret = TRY(read_secret(
        ctx, o.provider + " webhook secret",
        "printf %s \"$SECRET\" | alumia-connect webhooks create --provider " + o.provider + " --secret-from-stdin"));
    body["secret"] = std::move(secret);
  }
  if (o.verify_token_from_stdin) {
    auto token = read_secret(ctx, o.provider + " verify token",
                             "printf %s \"$TOKEN\" | alumia-connect webhooks create --provider " + o.provider +
                                 " --verify-token-from-stdin");
    if (!token) {
      wipe_member(body, "secret");
      return std::unexpected(token.error());
    }
    body["verifyToken"] = std::move(*token);
  }
  auto client = ctx.client();
  if (!client) {
    for (const char* key : {"secret", "verifyToken"}) wipe_member(body, key);
    return std::unexpected(client.error());
  }
  auto data = TRY(post_secret_body(**client, k_endpoints, body));
  if (ctx.global.json) {
    ctx.print_data(data);
  } else {
    const json e = data.contains("endpoint") ? data["endpoint"] : json::object();
    auto fields = endpoint_fields(e);
    const bool generated = data.contains("secret") && data["secret"].is_string();
    if (generated) fields.emplace_back("secret", jstr(data, "secret"));
    fields.emplace_back("relay secret", jstr(data, "relaySecret"));
    print_fields(ctx.out, fields, status_fields(ctx));
    ctx.out << std::flush;
    for (auto& [k, v] : fields) wipe_string(v);
    ctx.note(std::string(generated ? "The secret and the relay secret are shown only this once and not shown again: "
                                     "store them now."
                                   : "The relay secret is shown only this once and not shown again: store it now.") +
             " Give " + jstr(e, "provider") + " the receive URL" + (generated ? " and the secret" : "") +
             "; your relay target verifies Alumia-Signature with the relay secret.");
  }
  wipe_member(data, "secret");
  wipe_member(data, "relaySecret");
  return {};
}

CliStatus show(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto e = TRY(client->get(endpoint_path(id)));
  if (ctx.global.json) ctx.print_data(e);
  else print_fields(ctx.out, endpoint_fields(e), status_fields(ctx));
  return {};
}

struct UpdateOptions {
  bool disable = false;
  bool enable = false;
  std::string label;
  const CLI::Option* label_option = nullptr;  // given at all (an empty label clears it)
  std::string relay_to;
  bool clear_relay_to = false;
  int64_t max_body_bytes = 0;
  std::string rate_limit;
  int64_t burst = 0;
  bool default_rate_limit = false;
};

CliStatus update(CliContext& ctx, const std::string& id, const UpdateOptions& o) {
  json body = json::object();
  if (o.disable) body["status"] = "disabled";
  if (o.enable) body["status"] = "active";
  if (o.label_option != nullptr && o.label_option->count() > 0) body["label"] = o.label;
  if (!o.relay_to.empty()) body["relayTo"] = o.relay_to;
  if (o.clear_relay_to) body["relayTo"] = nullptr;
  if (o.max_body_bytes > 0) body["maxBodyBytes"] = o.max_body_bytes;
  if (!o.rate_limit.empty()) body["rateLimit"] = rate_limit_member(o.rate_limit, o.burst);
  if (o.default_rate_limit) body["rateLimit"] = nullptr;
  if (body.empty())
    return usage_fail(
        "nothing to change: pass --disable, --enable, --label, --relay-to, --clear-relay-to, --max-body-bytes, "
        "--rate-limit or --default-rate-limit");
  auto client = TRY(ctx.client());
  auto e = TRY(client->patch(endpoint_path(id), body));
  if (ctx.global.json) {
    ctx.print_data(e);
    return {};
  }
  print_fields(ctx.out, endpoint_fields(e), status_fields(ctx));
  if (o.disable)
    ctx.note("Deliveries to this endpoint now get 404 until `alumia-connect webhooks update " + id + " --enable`.");
  return {};
}

CliStatus remove(CliContext& ctx, const std::string& id, bool yes) {
  if (!yes && !ctx.tty.stdin_tty)
    return usage_fail("refusing to delete webhook endpoint " + id + " without confirmation: pass --yes");
  auto client = TRY(ctx.client());
  if (!yes) {
    auto e = TRY(client->get(endpoint_path(id)));
    std::string what = terminal_safe(jstr(e, "provider"));
    if (!jstr(e, "label").empty()) what += " \"" + terminal_safe(jstr(e, "label")) + "\"";
    auto answer = TRY(prompt_line(ctx.err,
                                  "Delete webhook endpoint " + id + " — " + what +
                                      "? Deliveries get 404 and its pending jobs are cancelled. [y/N] ",
                                  false));
    if (answer != "y" && answer != "Y" && answer != "yes") return cli_fail(k_exit_error, "not deleted");
  }
  auto res = TRY(client->del(endpoint_path(id)));
  if (ctx.global.json) ctx.print_data(res);
  else if (!ctx.global.quiet) ctx.out << "Deleted webhook endpoint " << id << '\n';
  return {};
}

struct RotateOptions {
  bool secret_from_stdin = false;
  int grace_seconds = 0;
  const CLI::Option* grace_option = nullptr;
};

CliStatus rotate(CliContext& ctx, const std::string& id, const RotateOptions& o) {
  json body = json::object();
  if (o.grace_option != nullptr && o.grace_option->count() > 0) body["graceSeconds"] = o.grace_seconds;
  if (o.secret_from_stdin) {
    auto secret = TRY(
        read_secret(ctx, "new webhook secret",
                    "printf %s \"$SECRET\" | alumia-connect webhooks rotate-secret " + id + " --secret-from-stdin"));
    body["secret"] = std::move(secret);
  }
  auto client = ctx.client();
  if (!client) {
    wipe_member(body, "secret");
    return std::unexpected(client.error());
  }
  auto data = TRY(post_secret_body(**client, endpoint_path(id) + "/rotate-secret", body));
  if (ctx.global.json) {
    ctx.print_data(data);
  } else {
    const bool generated = data.contains("secret") && data["secret"].is_string();
    const std::string until = jstr(data, "previousSecretExpiresAt");
    std::vector<std::pair<std::string, std::string>> fields{{"id", id}};
    if (generated) fields.emplace_back("secret", jstr(data, "secret"));
    fields.emplace_back("old secret", until.empty() ? "no longer accepted" : "accepted until " + until);
    print_fields(ctx.out, fields);
    ctx.out << std::flush;
    for (auto& [k, v] : fields) wipe_string(v);
    if (generated) ctx.note("The new secret is shown only this once and not shown again: give it to the provider now.");
  }
  wipe_member(data, "secret");
  return {};
}

}  // namespace

void register_webhooks(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("webhooks", "Manage webhook endpoints: where providers deliver events");
  group->require_subcommand(1);

  auto limit = std::make_shared<int>(0);
  auto* ls = group->add_subcommand("list", "List webhook endpoints, newest first");
  ls->add_option("--limit", *limit, "At most N endpoints (1-200; default 50)")
      ->check(CLI::Range(1, 200))
      ->type_name("N");
  on_run(*ls, ctx, [&ctx, limit] { return list(ctx, *limit); });

  auto co = std::make_shared<CreateOptions>();
  auto* cr = group->add_subcommand("create", "Create an endpoint; prints its receive URL and, once, its secrets");
  cr->add_option("--provider", co->provider, webhooks::provider_list(" or "))->required()->type_name("PROVIDER");
  cr->add_option("--connection", co->connection, "The connection the endpoint belongs to")->type_name("ID");
  cr->add_option("--label", co->label, "A name for the endpoint")->type_name("LABEL");
  cr->add_option("--relay-to", co->relay_to, "Relay events to this URL (default: the daemon's --relay-to)")
      ->type_name("URL");
  cr->add_option("--max-body-bytes", co->max_body_bytes, "Largest accepted delivery (default 262144, at most 25 MiB)")
      ->check(CLI::Range(int64_t{1}, k_max_body_bytes))
      ->type_name("N");
  auto* cr_rate = cr->add_option("--rate-limit", co->rate_limit,
                                 "Deliveries a second this endpoint accepts, over which it answers 429 (default: the "
                                 "daemon's webhook-rate-limit, 1000/s)")
                      ->check(CLI::Validator([](std::string& v) { return parse_rate(v) ? "" : k_rate_help; }, "N[/s]"))
                      ->type_name("N[/s]");
  cr->add_option("--burst", co->burst, "Deliveries accepted at once above the rate (default: twice --rate-limit)")
      ->check(CLI::Range(int64_t{1}, k_max_rate))
      ->needs(cr_rate)
      ->type_name("M");
  cr->add_flag(
      "--secret-from-stdin", co->secret_from_stdin,
      "Read the provider-issued secret from stdin (Stripe whsec_, Slack signing secret, Meta app secret, "
      "Twilio auth token, Discord public key, Linear signing secret; also your own secret for github, telegram)");
  cr->add_flag("--verify-token-from-stdin", co->verify_token_from_stdin,
               "Read the verify token from stdin (whatsapp subscription handshake; gmail push ?token=), after the "
               "secret's line when both are read");
  cr->add_option("--audience", co->audience, "gmail: the push subscription's audience")->type_name("AUDIENCE");
  cr->add_option("--jwks-url", co->jwks_url, "gmail: where Google's signing keys are fetched (https)")
      ->type_name("URL");
  cr->add_option("--service-account-email", co->service_account_email, "gmail: the push subscription's service account")
      ->type_name("EMAIL");
  cr->add_option("--bot-id", co->bot_id, "telegram: the bot id (default: from --connection's bot token)")
      ->type_name("ID");
  on_run(*cr, ctx, [&ctx, co] { return create(ctx, *co); });

  auto sid = std::make_shared<std::string>();
  auto* sh = group->add_subcommand("show", "Show one endpoint with its receive URL and delivery counts");
  sh->add_option("ID", *sid, "Endpoint id")->required();
  on_run(*sh, ctx, [&ctx, sid] { return show(ctx, *sid); });

  auto uid = std::make_shared<std::string>();
  auto uo = std::make_shared<UpdateOptions>();
  auto* up = group->add_subcommand(
      "update", "Disable or enable an endpoint, or change its label, relay target, body cap, rate limit");
  up->add_option("ID", *uid, "Endpoint id")->required();
  auto* disable = up->add_flag("--disable", uo->disable, "Stop accepting deliveries (they get 404)");
  auto* enable = up->add_flag("--enable", uo->enable, "Accept deliveries again");
  disable->excludes(enable);
  uo->label_option = up->add_option("--label", uo->label, "A new name (\"\" clears it)")->type_name("LABEL");
  auto* relay = up->add_option("--relay-to", uo->relay_to, "Relay this endpoint's events to URL")->type_name("URL");
  auto* clear = up->add_flag("--clear-relay-to", uo->clear_relay_to, "Use the daemon's --relay-to again");
  relay->excludes(clear);
  up->add_option("--max-body-bytes", uo->max_body_bytes, "Largest accepted delivery (at most 25 MiB)")
      ->check(CLI::Range(int64_t{1}, k_max_body_bytes))
      ->type_name("N");
  auto* up_rate = up->add_option("--rate-limit", uo->rate_limit,
                                 "Deliveries a second this endpoint accepts, over which it answers 429")
                      ->check(CLI::Validator([](std::string& v) { return parse_rate(v) ? "" : k_rate_help; }, "N[/s]"))
                      ->type_name("N[/s]");
  up->add_option("--burst", uo->burst, "Deliveries accepted at once above the rate (default: twice --rate-limit)")
      ->check(CLI::Range(int64_t{1}, k_max_rate))
      ->needs(up_rate)
      ->type_name("M");
  auto* up_default_rate = up->add_flag("--default-rate-limit", uo->default_rate_limit,
                                       "Use the daemon's default rate limit again (webhook-rate-limit, -burst)");
  up_rate->excludes(up_default_rate);
  on_run(*up, ctx, [&ctx, uid, uo] { return update(ctx, *uid, *uo); });

  auto did = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  auto* rm = group->add_subcommand("delete", "Delete an endpoint: deliveries get 404, pending jobs are cancelled");
  rm->add_option("ID", *did, "Endpoint id")->required();
  rm->add_flag("-y,--yes", *yes, "Do not ask for confirmation (required without a terminal)");
  on_run(*rm, ctx, [&ctx, did, yes] { return remove(ctx, *did, *yes); });

  auto rid = std::make_shared<std::string>();
  auto ro = std::make_shared<RotateOptions>();
  auto* rot = group->add_subcommand(
      "rotate-secret",
      "New secret (generated, or the provider's from stdin); the old one verifies during a grace period");
  rot->add_option("ID", *rid, "Endpoint id")->required();
  rot->add_flag("--secret-from-stdin", ro->secret_from_stdin, "Read the new provider-issued secret from stdin");
  ro->grace_option = rot->add_option("--grace-seconds", ro->grace_seconds,
                                     "How long the old secret keeps verifying (0-604800; default 86400)")
                         ->check(CLI::Range(0, 604800))
                         ->type_name("S");
  on_run(*rot, ctx, [&ctx, rid, ro] { return rotate(ctx, *rid, *ro); });
}

}  // namespace alumia::cli
