// alumia-connect keys list|create [--name] [--scope ...]|revoke ID
#include "app.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

namespace alumia::cli {
namespace {

CliStatus list(CliContext& ctx) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->get("/api/v1/api-keys"));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  const json items = data.is_object() && data.contains("items") ? data["items"] : data;
  Table t{{"ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED"}, {}};
  if (items.is_array())
    for (const auto& k : items)
      t.rows.push_back({jstr(k, "id"), jdisplay(k, "name"), jstr(k, "prefix"), jdisplay(k, "scopes"),
                        short_time(jstr(k, "createdAt")), short_time(jstr(k, "lastUsedAt"))});
  print_table(ctx.out, t);
  return {};
}

CliStatus create(CliContext& ctx, const std::string& name, const std::vector<std::string>& scopes) {
  auto client = TRY(ctx.client());
  json body = json::object();
  if (!name.empty()) body["name"] = name;
  if (!scopes.empty()) body["scopes"] = scopes;
  auto data = TRY(client->post("/api/v1/api-keys", body));
  if (ctx.global.json) {
    ctx.print_data(data);
  } else {
    std::string key = jstr(data, "key");
    ctx.out << key << '\n' << std::flush;
    wipe_string(key);
    const json& k = data.contains("apiKey") ? data["apiKey"] : json::object();
    ctx.note("Created key " + jstr(k, "id") + " (scopes: " + jdisplay(k, "scopes") +
             "). It is shown only this once: store it now.");
  }
  if (data.contains("key") && data["key"].is_string()) wipe_string(data["key"].get_ref<std::string&>());
  return {};
}

CliStatus revoke(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->del("/api/v1/api-keys/" + encode_component(id)));
  if (ctx.global.json) ctx.print_data(data);
  else if (!ctx.global.quiet) ctx.out << "Revoked API key " << id << '\n';
  return {};
}

}  // namespace

void register_keys(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("keys", "Manage API keys for the daemon (needs a key with the admin scope)");
  group->require_subcommand(1);
  auto* ls = group->add_subcommand("list", "List API keys (never their values)");
  on_run(*ls, ctx, [&ctx] { return list(ctx); });

  auto name = std::make_shared<std::string>();
  auto scopes = std::make_shared<std::vector<std::string>>();
  auto* cr = group->add_subcommand("create", "Create an API key and print it once");
  cr->add_option("--name", *name, "A name for the key")->type_name("NAME");
  cr->add_option("--scope", *scopes, "Scope to grant, one the key in use holds (repeatable; default: connections)")
      ->check(CLI::IsMember({"connections", "tokens", "webhooks", "admin"}))
      ->type_name("SCOPE")
      ->allow_extra_args(false);
  on_run(*cr, ctx, [&ctx, name, scopes] { return create(ctx, *name, *scopes); });

  auto id = std::make_shared<std::string>();
  auto* rv = group->add_subcommand("revoke", "Revoke an API key that holds no scope the key in use lacks");
  rv->add_option("ID", *id, "API key id")->required();
  on_run(*rv, ctx, [&ctx, id] { return revoke(ctx, *id); });
}

}  // namespace alumia::cli
