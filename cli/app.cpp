#include "app.hpp"

#include <alumia/base/fs.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>

namespace alumia::cli {
namespace {

constexpr const char* k_default_daemon_url = "http://127.0.0.1:7465";

void add_global_flags(CLI::App& app, GlobalOptions& g) {
  app.add_flag("--json", g.json, "Machine output: print the response data as JSON");
  app.add_option("--daemon", g.daemon_url, "Daemon URL (default: from the state file; env ALUMIA_DAEMON)")
      ->type_name("URL");
  app.add_option("--data-dir", g.data_dir, "Use DIR for all files, flat (like ALUMIA_HOME)")->type_name("DIR");
  app.add_flag("-q,--quiet", g.quiet, "Print only results and errors");
  app.add_flag("--no-color", g.no_color, "Do not color the output (also NO_COLOR)");
}

}  // namespace

FilteredStreams::FilteredStreams(std::ostream& out_stream, std::ostream& err_stream,
                                 std::function<TerminalFilter::Mode()> out_mode)
    : out_filter(out_stream.rdbuf(), std::move(out_mode)),
      err_filter(err_stream.rdbuf(), [] { return TerminalFilter::Mode::escape; }),
      filtered_out(&out_filter),
      filtered_err(&err_filter) {}

CliContext::CliContext(EnvLookup env_lookup, std::istream& in_stream, std::ostream& out_stream,
                       std::ostream& err_stream, TerminalInfo terminal)
    : FilteredStreams(out_stream, err_stream,
                      [this] {
                        if (global.json) return TerminalFilter::Mode::raw;
                        return color() ? TerminalFilter::Mode::escape_keep_sgr : TerminalFilter::Mode::escape;
                      }),
      env(std::move(env_lookup)),
      in(in_stream),
      out(filtered_out),
      err(filtered_err),
      raw_err(err_stream),
      tty(terminal) {}

int CliContext::run() {
  if (!action) {
    err << "alumia-connect: error: no command given; see `alumia-connect --help`\n";
    return k_exit_usage;
  }
  if (tty.stdout_tty && !global.json) set_table_width(terminal_columns(env));  // tables fit the terminal
  auto st = action();
  out.flush();
  if (st) return k_exit_ok;
  if (!st.error().message.empty()) err << "alumia-connect: error: " << st.error().message << '\n';
  err.flush();
  return st.error().exit_code;
}

CliResult<Paths> CliContext::paths() const {
  std::optional<std::string> flag;
  if (!global.data_dir.empty()) flag = global.data_dir;
  auto p = resolve_paths(flag, env);
  if (!p) return cli_fail(k_exit_error, p.error().message);
  return std::move(*p);
}

CliResult<Settings> CliContext::settings() const {
  std::map<std::string, std::string> flags;
  if (!global.daemon_url.empty()) flags["daemon"] = global.daemon_url;
  auto p = TRY(paths());
  auto s = Settings::resolve(flags, env, p.config_json());
  if (!s) return cli_fail(k_exit_error, s.error().message);
  return std::move(*s);
}

std::optional<DaemonState> read_state_file(const std::filesystem::path& path) {
  // Only a state file of our own, not a symbolic link, that nobody else can write: another user's
  // file here is treated as no state file at all (the daemon itself refuses to start next to it).
  auto text = read_owned_file(path, Privacy::no_foreign_writes, 64 * 1024);
  if (!text) return std::nullopt;
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  DaemonState st;
  st.url = jstr(j, "url");
  st.version = jstr(j, "version");
  if (j.contains("pid") && j["pid"].is_number_integer()) st.pid = static_cast<pid_t>(j["pid"].get<long long>());
  if (st.url.empty()) return std::nullopt;
  return st;
}

CliResult<DaemonLocation> CliContext::daemon_location() const {
  auto s = TRY(settings());
  const auto& daemon = s.setting("daemon");
  if (!daemon.value.empty()) {
    auto u = TRY(parse_daemon_url(daemon.value));
    return DaemonLocation{u, std::string(to_string(daemon.source))};
  }
  const auto state_file = paths()->state_file();  // settings() above resolved the paths
  if (auto st = read_state_file(state_file)) {
    auto u = parse_daemon_url(st->url);
    if (!u)
      return cli_fail(k_exit_error,
                      "the state file " + state_file.string() + " names an unusable URL: " + u.error().message);
    return DaemonLocation{*u, "state file"};
  }
  const auto& listen = s.setting("listen");
  if (listen.source != SettingSource::default_) {
    if (auto u = parse_daemon_url("http://" + listen.value); u && u->port != 0)
      return DaemonLocation{*u, std::string(to_string(listen.source)) + " (listen)"};
  }
  return DaemonLocation{*parse_daemon_url(k_default_daemon_url), "default"};
}

CliResult<DaemonClient*> CliContext::client() {
  if (m_client) return m_client.get();
  auto loc = TRY(daemon_location());
  // Item 32: the key goes only to a listener that runs as us.
  TRY(check_listener_owner(loc.url));
  std::string key;
  std::string key_source;
  if (auto k = env("ALUMIA_API_KEY")) {
    key = std::string(trim(*k));
    key_source = "ALUMIA_API_KEY";
  } else {
    const auto key_file = paths()->key_file();  // daemon_location() above resolved the paths
    auto k2 = read_private_file(key_file);
    if (!k2) {
      if (k2.error().code == ErrorCode::not_found)
        return cli_fail(error_info(ErrorCode::unauthorized).exit_code,
                        "no API key: " + key_file.string() +
                            " does not exist. alumia-connectd writes it on its first start (with the same data "
                            "directory), or set ALUMIA_API_KEY");
      return cli_fail(error_info(ErrorCode::unauthorized).exit_code, k2.error().message);
    }
    key = std::string(trim(*k2));
    wipe_string(*k2);
    key_source = key_file.string();
  }
  if (key.empty())
    return cli_fail(error_info(ErrorCode::unauthorized).exit_code, "the API key from " + key_source + " is empty");
  // A reply's warnings go to stderr, with --json too (stdout stays the data alone).
  m_client =
      std::make_unique<DaemonClient>(loc.url, std::move(key), key_source, [this](const std::string& w) { warn(w); });
  return m_client.get();
}

bool CliContext::color() const { return tty.stdout_tty && !global.no_color && !env("NO_COLOR") && !global.json; }

bool CliContext::progress() const {
  return tty.stderr_tty && !global.quiet && !global.json && !global.no_color && !env("NO_COLOR");
}

std::string CliContext::paint(const std::string& text, const char* sgr) const {
  if (!color()) return text;
  return std::string("\033[") + sgr + "m" + text + "\033[0m";
}

void CliContext::warn(const std::string& message) const { err << "alumia-connect: warning: " << message << '\n'; }

void CliContext::note(const std::string& message) const {
  if (!global.quiet) err << message << '\n';
}

namespace {

// "webhooks show" for the command `sub` (its names up to the root).
std::string command_path(const CLI::App& sub) {
  std::string path;
  for (const CLI::App* a = &sub; a->get_parent() != nullptr; a = a->get_parent())
    path = path.empty() ? a->get_name() : a->get_name() + " " + path;
  return path;
}

}  // namespace

std::string next_step(const std::string& path, int exit_code) {
  if (exit_code == error_info(ErrorCode::not_found).exit_code) {
    const std::string group = path.substr(0, path.find(' '));
    static const std::vector<std::pair<std::string, std::string>> k_lists{
        {"connections", "connections list"},
        {"credentials", "connections list"},
        {"token", "connections list"},
        {"setup-webhook", "connections list"},
        {"connect", "connectors list` or `alumia-connect connections list"},
        {"connectors", "connectors list"},
        {"oauth-client", "connectors list"},
        {"webhooks", "webhooks list"},
        {"listen", "webhooks list"},
        {"events", "events list"},
        {"jobs", "jobs list"},
        {"keys", "keys list"},
        {"admin", "webhooks list"}};
    for (const auto& [g, list] : k_lists)
      if (g == group) return "; `alumia-connect " + list + "` shows what exists";
    return "";
  }
  if (exit_code == error_info(ErrorCode::validation_error).exit_code || exit_code == k_exit_usage)
    return "; see `alumia-connect " + path + " --help`";
  return "";
}

void on_run(CLI::App& sub, CliContext& ctx, std::function<CliStatus()> fn) {
  sub.callback([&ctx, &sub, fn = std::move(fn)] {
    ctx.action = [&sub, fn] {
      auto st = fn();
      if (!st && !st.error().message.empty() && st.error().message.find("alumia-connect ") == std::string::npos)
        st.error().message += next_step(command_path(sub), st.error().exit_code);
      return st;
    };
  });
}

std::unique_ptr<CLI::App> build_app(CliContext& ctx) {
  auto app = std::make_unique<CLI::App>(
      "Connect accounts (OAuth or API keys) through the local alumia-connectd daemon and hand their "
      "credentials to your own programs.",
      "alumia-connect");
  app->set_version_flag("--version", std::string("alumia-connect ") + ALUMIA_VERSION);
  app->require_subcommand(1);
  app->fallthrough();  // global flags are accepted after the subcommand too
  add_global_flags(*app, ctx.global);
  register_connectors(*app, ctx);
  register_connections(*app, ctx);
  register_connect(*app, ctx);
  register_credentials(*app, ctx);
  register_token(*app, ctx);
  register_webhooks(*app, ctx);
  register_setup_webhook(*app, ctx);
  register_events(*app, ctx);
  register_jobs(*app, ctx);
  register_listen(*app, ctx);
  register_admin(*app, ctx);
  register_keys(*app, ctx);
  register_config(*app, ctx);
  register_oauth_client(*app, ctx);
  register_daemon(*app, ctx);
  register_doctor(*app, ctx);
  register_completion(*app, ctx);
  return app;
}

int report_parse_error(CLI::App& app, const CLI::ParseError& e, CliContext& ctx) {
  if (e.get_exit_code() == 0) return app.exit(e, ctx.out, ctx.err);  // --help, --version
  ctx.err << "alumia-connect: error: " << e.what()
          << "\nRun `alumia-connect --help` (or `COMMAND --help`) for usage.\n";
  return k_exit_usage;
}

}  // namespace alumia::cli
