// alumia-connect keys list|create [--name] [--scope ...]|revoke ID|rotate-master [--dry-run] [--to BACKEND]
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

// SPEC §11: the daemon re-wraps its data key under a new master key (or moves the key between backends).
CliStatus rotate_master(CliContext& ctx, bool dry_run, const std::string& to) {
  auto client = TRY(ctx.client());
  json body = json::object();
  if (dry_run) body["dryRun"] = true;
  if (!to.empty()) body["to"] = to;
  auto data = TRY(client->post("/api/v1/admin/master-key/rotate", body));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  const json from = data.contains("from") ? data["from"] : json::object();
  const json dest = data.contains("to") ? data["to"] : json::object();
  const std::string checked = std::to_string(data.value("secretsChecked", 0));
  if (dry_run) {
    ctx.out << "Dry run: all " << checked << " sealed values open with the data key; nothing was changed.\n"
            << "The new master key would go to " << jstr(dest, "location") << " (now in " << jstr(from, "location")
            << ").\n";
  } else if (!ctx.global.quiet) {
    ctx.out << "Rotated the master key: it is now in " << jstr(dest, "location") << "; the old one ("
            << jstr(from, "location") << ") no longer opens the store. " << checked << " sealed values checked.\n";
  }
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

  auto dry_run = std::make_shared<bool>(false);
  auto to = std::make_shared<std::string>();
  auto* rm = group->add_subcommand(
      "rotate-master", "Wrap the store's data key with a new master key, after checking every sealed value opens");
  rm->add_flag("--dry-run", *dry_run, "Only check that every sealed value opens; change nothing");
  rm->add_option("--to", *to, "Move the master key to this backend (default: where it is now)")
      ->check(CLI::IsMember({"secret-service", "file"}))
      ->type_name("BACKEND");
  on_run(*rm, ctx, [&ctx, dry_run, to] { return rotate_master(ctx, *dry_run, *to); });
}

}  // namespace alumia::cli
