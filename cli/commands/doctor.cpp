// alumia-connect doctor: one line per check (ok, warn or fail) with the command that fixes it (SPEC §10).
//
// It reads the daemon through its routes only: the status (any key), the diagnostics (any key: the
// caller's key, the store's files, the webhook base URL), the catalog, the connections, and the admin
// summary of the webhook relay. A check the key's scopes do not allow is a warning naming the scope.
// Any fail ends with exit 1 (3 when the daemon does not answer), after every line has been printed.
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/net/http_client.hpp>
#include "app.hpp"

#include <algorithm>
#include <set>

namespace alumia::cli {
namespace {

enum class Level { ok, warn, fail };

std::string_view level_name(Level l) {
  switch (l) {
    case Level::ok:
      return "ok";
    case Level::warn:
      return "warn";
    case Level::fail:
      return "fail";
  }
  return "fail";
}

struct Check {
  std::string name;
  Level level = Level::ok;
  std::string message;
  std::string fix;  // a command (or the one step) that fixes it; empty for ok
};

struct DoctorOptions {
  bool probe = true;  // GET <webhook base URL>/healthz from here
  int probe_timeout_s = 5;
};

std::string mib(uint64_t bytes) {
  char buf[32];
  if (bytes < (1u << 20)) std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

bool has_scope(const json& key, std::string_view scope) {
  if (!key.is_object() || !key.contains("scopes") || !key["scopes"].is_array()) return false;
  return std::any_of(key["scopes"].begin(), key["scopes"].end(),
                     [&](const json& s) { return s.is_string() && s.get<std::string>() == scope; });
}

Check lacks_scope(std::string name, std::string_view scope) {
  return {std::move(name), Level::warn, "not checked: the API key lacks the " + std::string(scope) + " scope",
          "use a key with the " + std::string(scope) +
              " scope (the owner's key file has every scope; "
              "`alumia-connect keys create --scope " +
              std::string(scope) + "`)"};
}

Check store_check(const json& store) {
  Check c{"store", Level::ok, "", ""};
  const std::string path = jstr(store, "path");
  if (!jbool(store, "readable")) {
    return {"store", Level::fail, "the store at " + path + " cannot be read: " + jstr(store, "readError"),
            "alumia-connect daemon logs (then restore the store from a backup or free the disk)"};
  }
  // A database server's store has no files here: its size and WAL are the server's to watch.
  if (jstr(store, "backend") != "sqlite") {
    c.message = jstr(store, "backend") + " " + path + " (answers; its size and WAL are on the database server)";
    return c;
  }
  if (jbool(store, "present") && !jbool(store, "private"))
    return {"store", Level::fail, path + " is readable by group or others", "chmod 600 " + path};
  const json wal = store.contains("wal") ? store["wal"] : json::object();
  const json intake = store.contains("intakeLog") ? store["intakeLog"] : json::object();
  const auto bytes = [](const json& f) { return f.value("bytes", uint64_t{0}); };
  c.message = jstr(store, "backend") + " " + path + ", " + mib(bytes(store)) + ", WAL " + mib(bytes(wal));
  if (jbool(intake, "present")) {
    if (!jbool(intake, "private"))
      return {"store", Level::fail, jstr(intake, "path") + " (the intake log) is readable by group or others",
              "chmod 600 " + jstr(intake, "path")};
    c.message += ", intake log " + mib(bytes(intake));
  }
  // A WAL that outgrew the store means checkpoints are starved (a reader that never ends).
  constexpr uint64_t k_big_wal = 256ull << 20;
  if (bytes(wal) > k_big_wal && bytes(wal) > bytes(store)) {
    c.level = Level::warn;
    c.message += ": the WAL is larger than the store, so checkpoints are not keeping up";
    c.fix = "alumia-connect daemon stop && alumia-connect daemon start (a clean stop checkpoints the WAL)";
  }
  return c;
}

Check keyring_check(const json& status) {
  const json k = status.contains("keyring") && status["keyring"].is_object() ? status["keyring"] : json::object();
  const std::string backend = jstr(k, "backend");
  if (backend == "file")
    return {"keyring", Level::warn,
            "THE MASTER KEY IS IN A FILE (" + jdisplay(k, "location") +
                "), not in the Secret Service: whoever reads that file (or a backup of it) and the store can open "
                "every secret",
            "start alumia-connectd where a Secret Service answers (a desktop session, or dbus-run-session with "
            "gnome-keyring) with --keyring secret-service, and move the key there: alumia-connect keys "
            "rotate-master --help"};
  return {"keyring", Level::ok, backend + (jstr(k, "location").empty() ? "" : " (" + jstr(k, "location") + ")"), ""};
}

// GET <base>/healthz from this machine: "" when it answered 200, else what happened.
std::string probe_base(const std::string& url, const DoctorOptions& o) {
  http::HttplibClient client;
  http::OutboundRequest req;
  req.url = url + "/healthz";
  req.connect_timeout = std::chrono::seconds(o.probe_timeout_s);
  req.timeout = std::chrono::seconds(o.probe_timeout_s);
  auto res = client.send(req);
  if (res && res->status == 200) return "";
  return req.url + " " + (res ? "answered " + std::to_string(res->status) : res.error().message);
}

Check base_url_check(const json& diag, const DoctorOptions& o) {
  const json b = diag.contains("webhookBase") ? diag["webhookBase"] : json::object();
  const std::string set_it =
      "set webhookBaseUrl in config.json (or CONNECTOR_WEBHOOK_BASE_URL) to the public https origin of "
      "--public-listen, then restart the daemon";
  if (!b.contains("url") || !b["url"].is_string())
    return {"base url", Level::warn,
            "no webhook base URL: receive URLs point at the loopback listener, which providers cannot reach", set_it};
  const std::string url = jstr(b, "url");
  const std::string probe = o.probe ? probe_base(url, o) : "";
  const std::string reach = !o.probe        ? "not probed"
                            : probe.empty() ? "reachable: " + url + "/healthz answered 200"
                                            : "not reachable from this machine: " + probe;
  if (!jbool(b, "safe"))
    return {"base url", Level::warn,
            url + " breaks the public base URL rule: " + jstr(b, "brokenRule") +
                " (allowed by --allow-insecure-base-url, for development only; " + reach + ")",
            set_it};
  if (probe.empty()) return {"base url", Level::ok, url + " (from " + jstr(b, "origin") + "; " + reach + ")", ""};
  return {"base url", Level::warn,
          url + " is " + reach + "; providers may still reach it if only this machine's route is missing",
          "check the TLS proxy in front of --public-listen and the DNS name (or skip the probe: doctor --no-probe)"};
}

// OAuth connectors: which have a client; those a connection depends on and that lack one fail.
Check oauth_clients_check(const json& connectors, const json* connections) {
  std::vector<std::string> configured, missing, needed;
  std::set<std::string> used;
  if (connections)
    for (const auto& c : *connections)
      if (jstr(c, "status") != "revoked") used.insert(jstr(c, "connectorSlug"));
  for (const auto& c : connectors) {
    if (jstr(c, "authType") != "oauth" || jstr(c, "availability") == "coming_soon") continue;
    const std::string slug = jstr(c, "slug");
    if (jbool(c, "configured")) configured.push_back(slug);
    else if (used.contains(slug)) needed.push_back(slug);
    else missing.push_back(slug);
  }
  const std::string summary = "configured: " + (configured.empty() ? "none" : join(configured, ", ")) +
                              (missing.empty() ? "" : "; without a client: " + join(missing, ", "));
  if (!needed.empty())
    return {"oauth clients", Level::fail,
            "connections of " + join(needed, ", ") + " have no OAuth client to refresh with (" + summary + ")",
            "printf %s \"$SECRET\" | alumia-connect oauth-client set " + needed.front() + " --client-id ID (or set " +
                oauth_client_env_names(needed.front()).client_id + " and " +
                oauth_client_env_names(needed.front()).client_secret + " and restart the daemon)"};
  return {"oauth clients", Level::ok, summary, ""};
}

Check connections_check(const json& connections) {
  std::vector<std::string> broken;
  std::string first_fix;
  for (const auto& c : connections) {
    const std::string st = jstr(c, "status");
    if (st != "error" && st != "expired") continue;
    broken.push_back(jstr(c, "id") + " (" + jstr(c, "connectorSlug") + ", " + st + ")");
    if (first_fix.empty())
      first_fix = "alumia-connect connect " + jstr(c, "connectorSlug") + " --reconnect " + jstr(c, "id");
  }
  if (!broken.empty())
    return {"connections", Level::fail, std::to_string(broken.size()) + " need a reconnect: " + join(broken, ", "),
            first_fix};
  return {"connections", Level::ok, std::to_string(connections.size()) + " connections, none needs a reconnect", ""};
}

// The webhook relay from the admin summary: endpoints that cannot take deliveries or fail to verify
// them, and dead jobs.
std::vector<Check> webhook_checks(const json& summary) {
  std::vector<Check> out;
  const json endpoints = summary.contains("endpoints") ? summary["endpoints"] : json::array();
  std::vector<std::string> disabled, unverified;
  std::string unverified_id;
  for (const auto& e : endpoints) {
    const std::string id = jstr(e, "id");
    if (jstr(e, "status") == "disabled") disabled.push_back(id);
    const json counts = e.contains("counts") ? e["counts"] : json::object();
    const json err = e.contains("lastError") ? e["lastError"] : json(nullptr);
    if (counts.value("verificationFailures", int64_t{0}) > 0 && err.is_object() &&
        jstr(err, "code") == "UNAUTHORIZED") {
      unverified.push_back(id + " (" + jstr(e, "provider") + ": " + jstr(err, "message") + ")");
      if (unverified_id.empty()) unverified_id = id;
    }
  }
  if (!disabled.empty())
    out.push_back({"endpoints", Level::warn, "disabled (deliveries get 404): " + join(disabled, ", "),
                   "alumia-connect webhooks update " + disabled.front() + " --enable"});
  if (!unverified.empty())
    out.push_back({"verification", Level::warn,
                   "the last delivery failed its signature check: " + join(unverified, ", "),
                   "check the secret the provider signs with: alumia-connect webhooks rotate-secret " + unverified_id +
                       " (then set it at the provider), or alumia-connect setup-webhook"});
  if (disabled.empty() && unverified.empty())
    out.push_back({"endpoints", Level::ok,
                   std::to_string(endpoints.size()) + " endpoints, none disabled or failing "
                                                      "verification",
                   ""});
  const json jobs = summary.contains("jobs") ? summary["jobs"] : json::object();
  const int64_t dead = jobs.value("dead", int64_t{0});
  const int64_t failed = jobs.value("failed", int64_t{0});
  if (dead > 0)
    out.push_back({"jobs", Level::warn,
                   std::to_string(dead) + " dead relay jobs (retries exhausted)" +
                       (failed > 0 ? ", " + std::to_string(failed) + " failing and retrying" : ""),
                   "alumia-connect jobs list --state dead, then alumia-connect jobs retry --state dead"});
  else if (failed > 0)
    out.push_back({"jobs", Level::warn, std::to_string(failed) + " relay jobs failing and retrying",
                   "alumia-connect jobs list --state failed (is the relay target up?)"});
  else out.push_back({"jobs", Level::ok, "no dead or failing relay jobs", ""});
  return out;
}

std::vector<Check> run_checks(CliContext& ctx, const DoctorOptions& o, bool& unreachable) {
  std::vector<Check> checks;
  // The probe and the lists may take seconds: a spinner on a terminal, ticked before each step.
  Spinner spinner(ctx.raw_err, ctx.progress(), "Checking...");
  spinner.tick();
  auto client = ctx.client();
  CliResult<json> status = client ? (*client)->get("/api/v1/status") : std::unexpected(client.error());
  if (!status) {
    const bool down = status.error().exit_code == k_exit_unreachable;
    const bool unauthorized = status.error().exit_code == error_info(ErrorCode::unauthorized).exit_code;
    unreachable = down;
    checks.push_back({"daemon", Level::fail, status.error().message,
                      down           ? "alumia-connect daemon start"
                      : unauthorized ? "use the owner's key file of this data directory, or set ALUMIA_API_KEY"
                                     : "alumia-connect daemon logs"});
    return checks;
  }
  DaemonClient& c = **client;
  const std::string version = jstr(*status, "version");
  Check daemon{"daemon", Level::ok,
               "alumia-connectd " + version + " at " + jstr(*status, "url") + " (pid " + jdisplay(*status, "pid") + ")",
               ""};
  if (version != ALUMIA_VERSION) {
    daemon.level = Level::warn;
    daemon.message += "; this alumia-connect is " + std::string(ALUMIA_VERSION);
    daemon.fix = "alumia-connect daemon stop && alumia-connect daemon start (with the binaries of one build)";
  }
  checks.push_back(std::move(daemon));

  spinner.tick();
  auto diag = c.get("/api/v1/diagnostics");
  if (!diag) {
    checks.push_back({"diagnostics", Level::fail, diag.error().message,
                      "alumia-connect daemon stop && alumia-connect daemon start (an older daemon lacks the route)"});
    return checks;
  }
  const json key = diag->contains("key") ? (*diag)["key"] : json(nullptr);
  std::string scopes;
  if (key.is_object() && key["scopes"].is_array())
    for (const auto& s : key["scopes"]) scopes += (scopes.empty() ? "" : ", ") + s.get<std::string>();
  checks.push_back(
      {"api key", Level::ok,
       key.is_object() ? "valid: " + jstr(key, "name") + " (" + jstr(key, "prefix") + "…), scopes " + scopes : "valid",
       ""});
  checks.push_back(store_check((*diag)["store"]));
  checks.push_back(keyring_check(*status));
  spinner.tick();
  checks.push_back(base_url_check(*diag, o));

  std::optional<json> connections;
  if (has_scope(key, "connections")) {
    auto list = fetch_all(c, "/api/v1/connections", 50);
    if (!list) checks.push_back({"connections", Level::fail, list.error().message, "alumia-connect daemon logs"});
    else connections = std::move(*list);
  }
  spinner.tick();
  auto connectors = fetch_all(c, "/api/v1/connectors", 50);
  if (!connectors)
    checks.push_back({"oauth clients", Level::fail, connectors.error().message, "alumia-connect daemon logs"});
  else checks.push_back(oauth_clients_check(*connectors, connections ? &*connections : nullptr));
  if (connections) checks.push_back(connections_check(*connections));
  else if (!has_scope(key, "connections")) checks.push_back(lacks_scope("connections", "connections"));

  if (has_scope(key, "admin")) {
    spinner.tick();
    auto summary = c.get("/api/v1/admin/connector-events?limit=1");
    if (!summary) checks.push_back({"endpoints", Level::fail, summary.error().message, "alumia-connect daemon logs"});
    else
      for (auto& w : webhook_checks(*summary)) checks.push_back(std::move(w));
  } else {
    checks.push_back(lacks_scope("endpoints", "admin"));
  }
  return checks;
}

CliStatus doctor(CliContext& ctx, const DoctorOptions& o) {
  bool unreachable = false;
  const auto checks = run_checks(ctx, o, unreachable);
  const auto count = [&](Level l) {
    return std::count_if(checks.begin(), checks.end(), [l](const Check& c) { return c.level == l; });
  };
  const auto fails = count(Level::fail);
  const auto warns = count(Level::warn);
  if (ctx.global.json) {
    json items = json::array();
    for (const auto& c : checks)
      items.push_back({{"check", c.name},
                       {"status", level_name(c.level)},
                       {"message", c.message},
                       {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
    ctx.print_data(json{{"ok", fails == 0}, {"failures", fails}, {"warnings", warns}, {"checks", std::move(items)}});
  } else {
    std::size_t width = 0;
    for (const auto& c : checks) width = std::max(width, c.name.size());
    // Messages and fixes are wrapped to the terminal's width (on a terminal only), under their column.
    const std::size_t indent = 5 + width + 2;
    const std::size_t text_width = table_width() > indent + 20 ? table_width() - indent : 0;
    const auto print_wrapped = [&](const std::string& text) {
      const auto lines = wrap_text(text, text_width);
      for (std::size_t i = 0; i < lines.size(); ++i)
        ctx.out << (i == 0 ? "" : std::string(indent, ' ')) << lines[i] << '\n';
    };
    for (const auto& c : checks) {
      const std::string level(level_name(c.level));
      const char* sgr = c.level == Level::ok ? "32" : c.level == Level::warn ? "33" : "31";
      ctx.out << ctx.paint(level, sgr) << std::string(5 - level.size(), ' ') << c.name
              << std::string(width - c.name.size() + 2, ' ');
      print_wrapped(c.message);
      if (!c.fix.empty()) {
        ctx.out << std::string(indent, ' ');
        print_wrapped("fix: " + c.fix);
      }
    }
  }
  if (fails > 0)
    return cli_fail(unreachable ? k_exit_unreachable : k_exit_error, "doctor: " + std::to_string(fails) + " of " +
                                                                         std::to_string(checks.size()) +
                                                                         " checks failed (each names its fix above)");
  if (!ctx.global.json && !ctx.global.quiet)
    ctx.out << "\n" << checks.size() << " checks: " << fails << " failed, " << warns << " warnings\n";
  return {};
}

}  // namespace

void register_doctor(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<DoctorOptions>();
  auto* cmd = app.add_subcommand("doctor",
                                 "Check the daemon, key, store, keyring, base URL, OAuth clients, connections and "
                                 "webhooks; each line ok/warn/fail with its fix (exit 1 on any fail)");
  cmd->add_flag("--no-probe{false}", o->probe, "Do not request <webhook base URL>/healthz from this machine");
  cmd->add_option("--probe-timeout", o->probe_timeout_s, "Seconds the base URL probe may take (default 5)")
      ->check(CLI::Range(1, 60))
      ->type_name("S");
  on_run(*cmd, ctx, [&ctx, o] { return doctor(ctx, *o); });
}

}  // namespace alumia::cli
