// alumia-connect connectors list|show SLUG
#include <alumia/base/try.hpp>
#include "app.hpp"

namespace alumia::cli {
namespace {

// The whole catalog as one list page (every page fetched).
CliResult<json> fetch_catalog(DaemonClient& client) {
  auto items = TRY(fetch_all(client, "/api/v1/connectors"));
  const auto n = items.size();
  return json{{"items", std::move(items)}, {"limit", n}, {"nextCursor", nullptr}, {"hasMore", false}};
}

CliStatus list(CliContext& ctx) {
  auto client = TRY(ctx.client());
  auto data = TRY(fetch_catalog(*client));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  Table t{{"SLUG", "NAME", "AUTH", "CATEGORY", "AVAILABILITY"}, {}};
  for (const auto& c : data["items"])
    t.rows.push_back(
        {jstr(c, "slug"), jstr(c, "name"), jstr(c, "authType"), jdisplay(c, "category"), jdisplay(c, "availability")});
  print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
    if (col != 4) return cell;
    return ctx.paint(cell, cell.starts_with("available") ? "32" : "33");
  });
  return {};
}

CliStatus show(CliContext& ctx, const std::string& slug) {
  auto client = TRY(ctx.client());
  auto c = TRY(client->get("/api/v1/connectors/" + encode_component(slug)));
  if (ctx.global.json) {
    ctx.print_data(c);
    return {};
  }
  std::vector<std::pair<std::string, std::string>> f{{"slug", jstr(c, "slug")},
                                                     {"name", jstr(c, "name")},
                                                     {"description", jdisplay(c, "description")},
                                                     {"category", jdisplay(c, "category")},
                                                     {"auth", jdisplay(c, "authType")},
                                                     {"configured", jdisplay(c, "configured")},
                                                     {"availability", jdisplay(c, "availability")}};
  if (c.contains("availabilityReason") && c["availabilityReason"].is_string())
    f.emplace_back("reason", jstr(c, "availabilityReason"));
  if (c.contains("commands")) {
    std::string cmds;
    if (c["commands"].is_array())
      for (const auto& x : c["commands"]) {
        if (!cmds.empty()) cmds += ", ";
        cmds += x.is_string() ? x.get<std::string>() : jstr(x, "name");
      }
    if (!cmds.empty()) f.emplace_back("commands", cmds);
  }
  print_fields(ctx.out, f);
  if (c.contains("credentialFields") && c["credentialFields"].is_array() && !c["credentialFields"].empty()) {
    ctx.out << "\nCredential fields:\n";
    Table t{{"  KEY", "LABEL", "REQUIRED", "SECRET"}, {}};
    for (const auto& fld : c["credentialFields"])
      t.rows.push_back({"  " + jstr(fld, "key"), jstr(fld, "label"), jbool(fld, "required") ? "yes" : "no",
                        jbool(fld, "secret") ? "yes" : "no"});
    print_table(ctx.out, t);
  }
  if (c.contains("tools") && c["tools"].is_array() && !c["tools"].empty()) {
    ctx.out << "\nTools:\n";
    Table t{{"  NAME", "DESCRIPTION"}, {}};
    for (const auto& tool : c["tools"]) t.rows.push_back({"  " + jstr(tool, "name"), jstr(tool, "description")});
    print_table(ctx.out, t);
  }
  return {};
}

}  // namespace

void register_connectors(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("connectors", "Browse the connector catalog");
  group->require_subcommand(1);
  auto* ls = group->add_subcommand("list", "List the connectors the daemon knows");
  on_run(*ls, ctx, [&ctx] { return list(ctx); });
  auto slug = std::make_shared<std::string>();
  auto* sh = group->add_subcommand("show", "Show one connector: auth type, credential fields, tools");
  sh->add_option("SLUG", *slug, "Connector slug, e.g. github")->required();
  on_run(*sh, ctx, [&ctx, slug] { return show(ctx, *slug); });
}

}  // namespace alumia::cli
