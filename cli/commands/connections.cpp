// alumia-connect connections list|show ID|revoke ID [--yes]
#include <alumia/base/try.hpp>
#include "credentials_util.hpp"

namespace alumia::cli {
namespace {

struct ListOptions {
  std::string connector;
  std::string status;
  int limit = 0;
  bool all = false;
};

CliStatus list(CliContext& ctx, const ListOptions& o) {
  auto client = TRY(ctx.client());
  const std::string limit = o.limit > 0 ? std::to_string(o.limit) : o.all ? "200" : "";
  json result;
  json items = json::array();
  std::string cursor;
  for (int page = 0; page < 10000; ++page) {
    auto data = TRY(client->get(
        with_query("/api/v1/connections",
                   {{"connector", o.connector}, {"status", o.status}, {"limit", limit}, {"cursor", cursor}})));
    if (!o.all) {
      result = std::move(data);
      break;
    }
    if (data.contains("items") && data["items"].is_array())
      for (auto& it : data["items"]) items.push_back(std::move(it));
    cursor = jstr(data, "nextCursor");
    if (!jbool(data, "hasMore") || cursor.empty()) {
      result = json{{"items", items}, {"limit", data.value("limit", 0)}, {"nextCursor", nullptr}, {"hasMore", false}};
      break;
    }
  }
  if (ctx.global.json) {
    ctx.print_data(result);
    return {};
  }
  Table t{{"ID", "CONNECTOR", "LABEL", "STATUS", "ACCOUNT", "UPDATED"}, {}};
  if (result.contains("items") && result["items"].is_array())
    for (const auto& c : result["items"])
      t.rows.push_back({jstr(c, "id"), jstr(c, "connectorSlug"), jdisplay(c, "label"), jstr(c, "status"),
                        jdisplay(c, "accountLabel"), short_time(jstr(c, "updatedAt"))});
  if (t.rows.empty()) {
    ctx.note("No connections. Create one with `alumia-connect connect SLUG`.");
    return {};
  }
  print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
    return col == 3 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
  });
  if (jbool(result, "hasMore")) ctx.note("More connections exist: use --all or a larger --limit.");
  return {};
}

CliStatus show(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto c = TRY(client->get("/api/v1/connections/" + encode_component(id)));
  if (ctx.global.json) ctx.print_data(c);
  else print_connection(ctx, c);
  return {};
}

CliStatus revoke(CliContext& ctx, const std::string& id, bool yes) {
  if (!yes) {
    if (!ctx.tty.stdin_tty)
      return usage_fail("refusing to revoke connection " + id + " without confirmation: pass --yes");
  }
  auto client = TRY(ctx.client());
  if (!yes) {
    auto c = TRY(client->get("/api/v1/connections/" + encode_component(id)));
    std::string what = terminal_safe(jstr(c, "connectorSlug"));
    if (!jstr(c, "label").empty()) what += " \"" + terminal_safe(jstr(c, "label")) + "\"";
    if (!jstr(c, "accountLabel").empty()) what += " (" + terminal_safe(jstr(c, "accountLabel")) + ")";
    auto answer = TRY(prompt_line(
        ctx.err, "Revoke connection " + id + " — " + what + "? Its credentials are destroyed. [y/N] ", false));
    if (answer != "y" && answer != "Y" && answer != "yes") return cli_fail(k_exit_error, "not revoked");
  }
  auto res = TRY(client->del("/api/v1/connections/" + encode_component(id)));
  if (ctx.global.json) {
    ctx.print_data(res);
    return {};
  }
  if (!ctx.global.quiet) ctx.out << "Revoked connection " << id << '\n';
  // The daemon reports the best-effort provider revocation; surface anything it says.
  for (const char* k : {"providerRevocation", "revocation"})
    if (res.contains(k)) ctx.note(std::string("provider revocation: ") + res[k].dump());
  return {};
}

}  // namespace

void register_connections(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("connections", "List, inspect and revoke your connections");
  group->require_subcommand(1);

  auto lo = std::make_shared<ListOptions>();
  auto* ls = group->add_subcommand("list", "List connections, newest first");
  ls->add_option("--connector", lo->connector, "Only this connector (slug)")->type_name("SLUG");
  ls->add_option("--status", lo->status, "Only this status")
      ->check(CLI::IsMember({"pending", "active", "error", "expired", "revoked"}))
      ->type_name("STATUS");
  ls->add_option("--limit", lo->limit, "Page size (1-200; default 50)")->check(CLI::Range(1, 200))->type_name("N");
  ls->add_flag("--all", lo->all, "Follow the cursor and list every page");
  on_run(*ls, ctx, [&ctx, lo] { return list(ctx, *lo); });

  auto id = std::make_shared<std::string>();
  auto* sh = group->add_subcommand("show", "Show one connection");
  sh->add_option("ID", *id, "Connection id")->required();
  on_run(*sh, ctx, [&ctx, id] { return show(ctx, *id); });

  auto rid = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  auto* rv = group->add_subcommand("revoke", "Revoke a connection: destroys its secrets, revokes at the provider");
  rv->add_option("ID", *rid, "Connection id")->required();
  rv->add_flag("-y,--yes", *yes, "Do not ask for confirmation (required without a terminal)");
  on_run(*rv, ctx, [&ctx, rid, yes] { return revoke(ctx, *rid, *yes); });
}

}  // namespace alumia::cli
