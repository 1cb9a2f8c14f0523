// alumia-connect config show: every effective setting, where it came from, and the paths. The settings
// are the running daemon's (GET /api/v1/admin/config: what it resolved at its start, from its own
// flags, environment and config file); when it does not answer, what this environment would give it.
#include <alumia/base/try.hpp>
#include "app.hpp"

#include <map>

namespace alumia::cli {
namespace {

struct ShownSetting {
  std::string value;  // secrets already "(set)" or ""
  std::string source;
};

// The daemon's view, or the reason it could not be had.
CliResult<std::map<std::string, ShownSetting>> daemon_settings(CliContext& ctx) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->get("/api/v1/admin/config"));
  std::map<std::string, ShownSetting> out;
  if (data.contains("settings") && data["settings"].is_array())
    for (const auto& s : data["settings"]) out[jstr(s, "name")] = {jstr(s, "value"), jstr(s, "source")};
  return out;
}

CliStatus show(CliContext& ctx) {
  auto settings = TRY(ctx.settings());
  std::map<std::string, ShownSetting> shown;
  for (const auto& spec : setting_specs()) {
    const auto& s = settings.setting(spec.name);
    shown[spec.name] = {spec.secret ? (s.value.empty() ? "" : "(set)") : s.value, std::string(to_string(s.source))};
  }
  auto from_daemon = daemon_settings(ctx);
  if (from_daemon) {
    // The CLI-only setting (`daemon`) stays this process's own.
    for (auto& [name, v] : *from_daemon)
      if (shown.contains(name) && name != "daemon") shown[name] = std::move(v);
  } else if (!ctx.global.json) {
    ctx.note("the daemon's settings are not shown (" + from_daemon.error().message +
             "); these are the values it would take from this environment and config file");
  }
  const auto resolved = ctx.paths();  // settings() above resolved the paths
  const Paths& p = *resolved;
  const std::vector<std::pair<std::string, std::string>> paths{{"dataDir", p.data_dir.string()},
                                                               {"configDir", p.config_dir.string()},
                                                               {"runtimeDir", p.runtime_dir.string()},
                                                               {"store", p.store_db().string()},
                                                               {"configFile", p.config_json().string()},
                                                               {"connectorsDir", p.connectors_d().string()},
                                                               {"stateFile", p.state_file().string()},
                                                               {"keyFile", p.key_file().string()},
                                                               {"logFile", (p.data_dir / "daemon.log").string()}};
  auto loc = ctx.daemon_location();
  const std::string key_source = ctx.env("ALUMIA_API_KEY") ? "env (ALUMIA_API_KEY)" : "key file";
  if (ctx.global.json) {
    json j{{"settings", json::array()}, {"paths", json::object()}};
    j["settingsFrom"] = from_daemon ? "daemon" : "cli";
    if (!from_daemon) j["daemonError"] = from_daemon.error().message;
    for (const auto& spec : setting_specs()) {
      const auto& s = shown[spec.name];
      j["settings"].push_back({{"name", spec.name},
                               {"value", s.value},
                               {"source", s.source},
                               {"env", spec.env},
                               {"configKey", spec.config_key},
                               {"description", spec.description},
                               {"values", describe_values(spec)},
                               {"default", spec.default_value},
                               {"testOnly", spec.test_only}});
    }
    for (const auto& [k, v] : paths) j["paths"][k] = v;
    j["paths"]["flat"] = p.flat;
    if (loc) j["daemon"] = {{"url", loc->url.url()}, {"source", loc->source}};
    else j["daemon"] = {{"url", nullptr}, {"error", loc.error().message}};
    j["apiKeySource"] = key_source;
    ctx.print_data(j);
    return {};
  }
  Table t{{"SETTING", "VALUE", "SOURCE", "ENV"}, {}};
  Table hooks{{"  SETTING", "VALUE", "SOURCE", "ENV"}, {}};
  for (const auto& spec : setting_specs()) {
    const auto& s = shown[spec.name];
    const std::string value = s.value.empty() ? "-" : s.value;
    if (spec.test_only) hooks.rows.push_back({"  " + spec.name, value, s.source, spec.env});
    else t.rows.push_back({spec.name, value, s.source, spec.env});
  }
  ctx.out << (from_daemon ? "Settings of the running daemon (as it resolved them at its start):\n"
                          : "Settings (the daemon does not answer: from this environment and config file):\n");
  print_table(ctx.out, t);
  ctx.out << "\nTest hooks (for the test suite; never set them in production):\n";
  print_table(ctx.out, hooks);
  ctx.out << "\nPaths" << (p.flat ? " (flat: ALUMIA_HOME or --data-dir)" : " (XDG)") << ":\n";
  Table pt{{"  NAME", "PATH"}, {}};
  for (const auto& [k, v] : paths) pt.rows.push_back({"  " + k, v});
  print_table(ctx.out, pt);
  ctx.out << "\nDaemon URL: " << (loc ? loc->url.url() + " (" + loc->source + ")" : "unusable: " + loc.error().message)
          << '\n';
  ctx.out << "API key:    " << key_source << '\n';
  return {};
}

}  // namespace

void register_config(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("config", "Show the effective configuration");
  group->require_subcommand(1);
  auto* sh = group->add_subcommand("show", "Print every setting with its value and source, and the paths");
  on_run(*sh, ctx, [&ctx] { return show(ctx); });
}

}  // namespace alumia::cli
