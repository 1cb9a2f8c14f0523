// alumia-connect connect SLUG ... and alumia-connect credentials ID ...
#include "credentials_util.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>

#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>

namespace alumia::cli {
namespace {

using namespace std::chrono_literals;

constexpr auto k_poll_interval = 300ms;

struct ConnectOptions {
  std::string slug;
  std::string label;
  std::vector<std::string> fields;
  bool from_stdin = false;
  bool select_account = false;
  bool no_browser = false;
  bool no_wait = false;
  int timeout_s = 300;
  std::string reconnect;
};

// The connection object of a create/credentials answer ({connection, ...} or the connection).
json connection_of(const json& data) {
  if (data.is_object() && data.contains("connection") && data["connection"].is_object()) return data["connection"];
  return data;
}

int url_port(const std::string& url, int fallback) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return fallback;
  const auto start = scheme + 3;
  auto end = url.find_first_of("/?#", start);
  if (end == std::string::npos) end = url.size();
  const std::string authority = url.substr(start, end - start);
  const auto colon = authority.rfind(':');
  if (colon == std::string::npos || authority.find(']', colon) != std::string::npos)
    return url.starts_with("https") ? 443 : 80;
  const std::string digits = authority.substr(colon + 1);
  int port = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return ec == std::errc{} && p == digits.data() + digits.size() ? port : fallback;
}

// Warns before a flow that stores secrets when the daemon's master key sits in a plain file.
void warn_file_keyring(CliContext& ctx, DaemonClient& client) {
  auto st = client.get("/api/v1/status");
  if (!st || !st->is_object() || !st->contains("keyring")) return;
  const auto& k = (*st)["keyring"];
  if (jstr(k, "backend") != "file") return;
  std::string msg =
      "alumia-connectd keeps its master key in a file (no Secret Service answered): the tokens you store are "
      "protected only by file permissions";
  if (!jstr(k, "warning").empty()) msg += " (" + jstr(k, "warning") + ")";
  ctx.warn(msg);
}

CliStatus print_result(CliContext& ctx, const json& connection, const std::string& verb) {
  if (ctx.global.json) {
    ctx.print_data(connection);
    return {};
  }
  if (!ctx.global.quiet) {
    const std::string who = terminal_safe(jstr(connection, "accountLabel"));
    ctx.out << verb << ' ' << terminal_safe(jstr(connection, "connectorSlug")) << (who.empty() ? "" : " as " + who)
            << " — connection " << terminal_safe(jstr(connection, "id")) << '\n';
  }
  return {};
}

CliStatus connect_api_key(CliContext& ctx, DaemonClient& client, const json& connector, const ConnectOptions& o) {
  // Collect first: a usage error must not leave a pending connection behind.
  auto values = TRY(collect_credentials(ctx, connector, {o.fields, o.from_stdin}));
  std::string id = o.reconnect;
  if (id.empty()) {
    json body{{"connectorSlug", o.slug}};
    if (!o.label.empty()) body["label"] = o.label;
    auto created = client.post("/api/v1/connections", body);
    if (!created) {
      for (auto& [k, v] : values) wipe_string(v);
      return std::unexpected(created.error());
    }
    id = jstr(connection_of(*created), "id");
  }
  auto res = TRY(submit_credentials(ctx, id, values));
  return print_result(ctx, connection_of(res), o.reconnect.empty() ? "Connected" : "Reconnected");
}

CliStatus wait_for_oauth(CliContext& ctx, DaemonClient& client, const json& start, const ConnectOptions& o) {
  const std::string id = jstr(start, "id");
  const std::string baseline = jstr(start, "updatedAt");
  const bool reconnect = !o.reconnect.empty();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  InterruptGuard interrupt;
  // Never silent: the wait is announced once; the spinner (elapsed time) only on a terminal, and never
  // with NO_COLOR or --json, whose readers want plain lines.
  const bool spin = ctx.progress();
  ctx.note("Waiting up to " + std::to_string(o.timeout_s) + " s for the authorization of connection " + id +
           " (Ctrl-C to stop).");
  Spinner spinner(ctx.raw_err, spin, "Waiting for the authorization in the browser...");
  for (;;) {
    auto c = TRY(client.get("/api/v1/connections/" + encode_component(id)));
    const std::string status = jstr(c, "status");
    // A reconnect starts from a non-pending state, so it also needs the record to have moved.
    const bool moved = !reconnect || jstr(c, "updatedAt") != baseline;
    if (status != "pending" && moved) {
      spinner.clear();
      if (status == "active") return print_result(ctx, c, reconnect ? "Reconnected" : "Connected");
      std::string reason = c.contains("error") && c["error"].is_object() ? jstr(c["error"], "message") : "";
      if (reason.empty()) reason = "the connection is " + status;
      if (ctx.global.json) ctx.print_data(c);
      return cli_fail(k_exit_error, "authorization failed: " + reason);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      spinner.clear();
      return cli_fail(k_exit_timeout, "timed out after " + std::to_string(o.timeout_s) +
                                          " s waiting for the authorization; connection " + id +
                                          " is still pending (run the command again, or use --timeout)");
    }
    spinner.tick();
    if (interrupt.wait(k_poll_interval)) {
      spinner.clear();
      return cli_fail(k_exit_interrupted, "interrupted; connection " + id + " is still pending");
    }
  }
}

// The origin of a URL ("http://127.0.0.1:7465"), and whether its host is a loopback one.
std::string url_origin(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

bool loopback_origin(const std::string& origin) {
  const auto scheme = origin.find("://");
  std::string host = scheme == std::string::npos ? origin : origin.substr(scheme + 3);
  if (host.starts_with("[")) return host.starts_with("[::1]");
  host = host.substr(0, host.find(':'));
  return host == "localhost" || host.starts_with("127.");
}

std::string local_user(const EnvLookup& env) {
  for (const char* name : {"USER", "LOGNAME"})
    if (auto v = env(name); v && !v->empty()) return *v;
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return "";
}

std::string this_host(const Surroundings& where) {
  if (!where.ssh_server.empty()) return where.ssh_server;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') return name;
  return "THIS-HOST";
}

// Why no browser is opened here, as a list for one sentence.
std::string headless_reasons(const Surroundings& where) {
  std::vector<std::string> why;
  if (where.ssh)
    why.push_back(where.ssh_server.empty() ? "an SSH session" : "an SSH session (to " + where.ssh_server + ")");
  if (!where.display) why.push_back("no display (DISPLAY and WAYLAND_DISPLAY are unset)");
  if (where.browser.empty()) why.push_back("no $BROWSER");
  if (!where.container.empty()) why.push_back("inside a container (" + where.container + ")");
  return join(why, ", ");
}

// Says what will happen before it happens (issue 15 item 3), then opens the browser when it can.
// Everything goes to stderr: stdout stays for the result.
void announce_and_open(CliContext& ctx, const std::string& url, int daemon_port, const ConnectOptions& o) {
  const Surroundings where = detect_surroundings(ctx.env);
  const bool headless = !where.can_open_browser();
  if (!o.no_browser && !headless) {
    ctx.note("Opening the authorization page for " + o.slug + " in your browser (" +
             (where.browser.empty() ? std::string("xdg-open") : terminal_safe(where.browser)) + ").");
    auto pid = open_browser(url, ctx.env);
    if (pid) {
      reap_child(*pid);
      ctx.note("If it did not open, visit:\n  " + terminal_safe(url));
      return;
    }
    ctx.warn(pid.error().message);
  }
  if (o.no_browser) ctx.err << "Not opening a browser (--no-browser).\n";
  else if (headless) ctx.err << "No browser will be opened here: " << headless_reasons(where) << ".\n";
  ctx.err << "Open this URL in a browser" << (headless ? " on your own machine" : "") << " to authorize " << o.slug
          << ":\n  " << terminal_safe(url) << '\n';
  if (!headless && !where.ssh) return;
  // How the provider's redirect comes back: the callback lies on the oauthUrl's origin.
  const std::string origin = url_origin(url);
  if (!loopback_origin(origin)) {
    ctx.err << "The provider sends the browser back to " << terminal_safe(origin)
            << " (the daemon's OAuth redirect base), which reaches the daemon from anywhere: no port forwarding is "
               "needed.\n";
    return;
  }
  const int port = url_port(url, daemon_port);
  const std::string user = local_user(ctx.env);
  const std::string target = (user.empty() ? "" : user + "@") + this_host(where);
  ctx.err << "The provider sends the browser back to " << terminal_safe(origin)
          << ", the daemon's loopback listener on this machine. Forward that port from the machine with the browser "
             "first (and keep it open until this finishes):\n  ssh -L "
          << port << ":127.0.0.1:" << port << ' ' << terminal_safe(target) << '\n';
  if (!where.container.empty())
    ctx.err << "This runs inside a container (" << terminal_safe(where.container)
            << "): the forward reaches the daemon only if "
            << "the container shares the host's network or publishes port " << port
            << "; otherwise start the daemon with ALUMIA_OAUTH_REDIRECT_BASE set to an origin that reaches it "
               "(docs/DEPLOY.md).\n";
}

CliStatus connect_oauth(CliContext& ctx, DaemonClient& client, const ConnectOptions& o) {
  if (!o.fields.empty() || o.from_stdin)
    return usage_fail("--field and --from-stdin are for api_key connectors; " + o.slug + " uses OAuth");
  CliResult<json> started;
  if (!o.reconnect.empty()) {
    json body = json::object();
    if (o.select_account) body["selectAccount"] = true;
    started = client.post("/api/v1/connections/" + encode_component(o.reconnect) + "/oauth-url", body);
  } else {
    json body{{"connectorSlug", o.slug}};
    if (!o.label.empty()) body["label"] = o.label;
    started = client.post("/api/v1/connections", body);
  }
  if (!started) return std::unexpected(started.error());
  const json connection = connection_of(*started);
  std::string url = jstr(*started, "oauthUrl");
  if (url.empty()) {
    if (jstr(connection, "status") == "active") {
      if (ctx.global.json) {
        ctx.print_data(o.no_wait ? *started : connection);
        return {};
      }
      ctx.note("Already connected (use --reconnect " + jstr(connection, "id") + " to authorize again).");
      return print_result(ctx, connection, "Connected");
    }
    return cli_fail(k_exit_error, "the daemon returned no authorization URL for connection " + jstr(connection, "id"));
  }
  if (o.select_account && o.reconnect.empty() && url.find("selectAccount=") == std::string::npos)
    url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("selectAccount=1");
  if (o.no_wait) {
    if (ctx.global.json) {
      ctx.print_data(json{{"connection", connection}, {"oauthUrl", url}});
    } else {
      ctx.out << terminal_safe(url) << '\n';
      ctx.note("Open the URL above to authorize " + o.slug + "; then check `alumia-connect connections show " +
               jstr(connection, "id") + "`.");
    }
    return {};
  }
  announce_and_open(ctx, url, client.url().port, o);
  return wait_for_oauth(ctx, client, connection, o);
}

CliStatus run_connect(CliContext& ctx, const ConnectOptions& options) {
  // A usage error is reported before the daemon is contacted.
  if (options.slug.empty() && options.reconnect.empty()) return usage_fail("SLUG is required (or --reconnect ID)");
  auto client = TRY(ctx.client());
  ConnectOptions o = options;
  std::optional<json> existing;
  if (!o.reconnect.empty()) {
    auto found = TRY(client->get("/api/v1/connections/" + encode_component(o.reconnect)));
    existing = found;
    if (o.slug.empty()) o.slug = jstr(*existing, "connectorSlug");  // `connect --reconnect ID` alone
  }
  if (o.slug.empty()) return usage_fail("SLUG is required (or --reconnect ID)");
  auto connector = TRY(client->get("/api/v1/connectors/" + encode_component(o.slug)));
  const std::string auth = jstr(connector, "authType");
  if (existing) {
    if (jstr(*existing, "connectorSlug") != o.slug)
      return usage_fail("connection " + o.reconnect + " belongs to " + jstr(*existing, "connectorSlug") + ", not " +
                        o.slug);
  }
  warn_file_keyring(ctx, *client);
  if (auth == "oauth") return connect_oauth(ctx, *client, o);
  if (auth == "none") {
    json body{{"connectorSlug", o.slug}};
    if (!o.label.empty()) body["label"] = o.label;
    auto created = TRY(client->post("/api/v1/connections", body));
    return print_result(ctx, connection_of(created), "Connected");
  }
  return connect_api_key(ctx, *client, connector, o);
}

CliStatus run_credentials(CliContext& ctx, const std::string& id, const CredentialInput& input) {
  auto client = TRY(ctx.client());
  auto conn = TRY(client->get("/api/v1/connections/" + encode_component(id)));
  const std::string slug = jstr(conn, "connectorSlug");
  auto connector = TRY(client->get("/api/v1/connectors/" + encode_component(slug)));
  if (jstr(connector, "authType") != "api_key")
    return usage_fail(slug + " does not take credentials; use `alumia-connect connect " + slug + " --reconnect " + id +
                      "`");
  auto values = TRY(collect_credentials(ctx, connector, input));
  auto res = TRY(submit_credentials(ctx, id, values));
  return print_result(ctx, connection_of(res), "Updated credentials of");
}

}  // namespace

void register_connect(CLI::App& app, CliContext& ctx) {
  auto o = std::make_shared<ConnectOptions>();
  auto* cmd = app.add_subcommand("connect", "Connect an account: OAuth in the browser, or API key credentials");
  cmd->add_option("SLUG", o->slug, "Connector slug, e.g. github or telegram (optional with --reconnect)");
  cmd->add_option("--label", o->label, "A name for this connection (to keep several per connector)")
      ->type_name("LABEL");
  cmd->add_option("--field", o->fields, "Credential value KEY=VALUE (api_key; repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  cmd->add_flag("--from-stdin", o->from_stdin, "Read credential values as a JSON object from stdin (api_key)");
  cmd->add_flag("--select-account", o->select_account, "Ask the provider to show its account picker (OAuth)");
  cmd->add_flag("--no-browser", o->no_browser, "Print the authorization URL instead of opening a browser");
  cmd->add_flag("--no-wait", o->no_wait,
                "Print the authorization URL and return (with --json: {connection, oauthUrl})");
  cmd->add_option("--timeout", o->timeout_s, "Seconds to wait for the authorization (default 300)")
      ->check(CLI::Range(1, 86400))
      ->type_name("S");
  cmd->add_option("--reconnect", o->reconnect, "Authorize an existing connection again, keeping its id")
      ->type_name("ID");
  on_run(*cmd, ctx, [&ctx, o] { return run_connect(ctx, *o); });
}

void register_credentials(CLI::App& app, CliContext& ctx) {
  auto id = std::make_shared<std::string>();
  auto in = std::make_shared<CredentialInput>();
  auto* cmd = app.add_subcommand("credentials", "Submit new credentials for an API-key connection");
  cmd->add_option("ID", *id, "Connection id")->required();
  cmd->add_option("--field", in->fields, "Credential value KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  cmd->add_flag("--from-stdin", in->from_stdin, "Read the values as a JSON object from stdin");
  on_run(*cmd, ctx, [&ctx, id, in] { return run_credentials(ctx, *id, *in); });
}

}  // namespace alumia::cli
