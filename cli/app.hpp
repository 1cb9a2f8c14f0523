#pragma once
// The CLI's one context object and build_app(): every command group registers itself here once.
// The binary, the completion generator and the man-page check all walk the same build_app().
#include "daemon_client.hpp"
#include "failure.hpp"
#include "output.hpp"
#include "terminal.hpp"

#include <alumia/config/config.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

namespace alumia::cli {

struct GlobalOptions {
  bool json = false;
  bool quiet = false;
  bool no_color = false;
  std::string daemon_url;  // --daemon
  std::string data_dir;    // --data-dir
};

// Where the daemon URL came from, for messages and `config show`.
struct DaemonLocation {
  DaemonUrl url;
  std::string source;  // "flag", "env", "config", "state file", "default"
};

// stdout and stderr behind TerminalFilters (output.hpp); a base so they exist before CliContext's
// `out` and `err` refer to them.
struct FilteredStreams {
  FilteredStreams(std::ostream& out_stream, std::ostream& err_stream, std::function<TerminalFilter::Mode()> out_mode);
  TerminalFilter out_filter;
  TerminalFilter err_filter;
  std::ostream filtered_out;
  std::ostream filtered_err;
};

struct CliContext : private FilteredStreams {
  CliContext(EnvLookup env_lookup, std::istream& in_stream, std::ostream& out_stream, std::ostream& err_stream,
             TerminalInfo terminal);

  GlobalOptions global;
  EnvLookup env;
  std::istream& in;
  // Human output goes through terminal_safe() on its way out (raw for --json on stdout): no
  // control character from the daemon reaches the terminal.
  std::ostream& out;
  std::ostream& err;
  std::ostream& raw_err;  // the real stderr, for the spinner's own \r and erase-line codes only
  TerminalInfo tty;
  // Set by the selected subcommand's parse callback; main() runs it after parsing.
  std::function<CliStatus()> action;

  // Runs the selected action; prints a failure as `alumia-connect: error: ...`; the exit code.
  int run();

  CliResult<Paths> paths() const;
  CliResult<Settings> settings() const;
  CliResult<DaemonLocation> daemon_location() const;
  // The client, after checking that the listener is ours and loading the key (lazily, once).
  CliResult<DaemonClient*> client();

  bool color() const;
  // Progress (a spinner with the elapsed time) is drawn on stderr while a command waits: only when
  // stderr is a terminal, and never with --quiet, --json, --no-color or NO_COLOR (issue 15 item 6).
  bool progress() const;
  std::string paint(const std::string& text, const char* sgr) const;  // SGR code like "32"
  void warn(const std::string& message) const;                        // stderr, always
  void note(const std::string& message) const;                        // stderr unless --quiet
  void print_data(const json& data) const { print_json(out, data); }

 private:
  std::unique_ptr<DaemonClient> m_client;
};

std::unique_ptr<CLI::App> build_app(CliContext& ctx);

// Prints a CLI11 parse error (or help/version) and gives the exit code: 0 for help and version,
// 2 for usage errors.
int report_parse_error(CLI::App& app, const CLI::ParseError& e, CliContext& ctx);

// Every command group, each in its own file.
void register_connectors(CLI::App& app, CliContext& ctx);
void register_connections(CLI::App& app, CliContext& ctx);
void register_connect(CLI::App& app, CliContext& ctx);
void register_credentials(CLI::App& app, CliContext& ctx);
void register_token(CLI::App& app, CliContext& ctx);
void register_webhooks(CLI::App& app, CliContext& ctx);
void register_setup_webhook(CLI::App& app, CliContext& ctx);
void register_events(CLI::App& app, CliContext& ctx);
void register_jobs(CLI::App& app, CliContext& ctx);
void register_listen(CLI::App& app, CliContext& ctx);
void register_admin(CLI::App& app, CliContext& ctx);
void register_keys(CLI::App& app, CliContext& ctx);
void register_config(CLI::App& app, CliContext& ctx);
void register_daemon(CLI::App& app, CliContext& ctx);
void register_doctor(CLI::App& app, CliContext& ctx);
void register_oauth_client(CLI::App& app, CliContext& ctx);
void register_completion(CLI::App& app, CliContext& ctx);

// Every error says what to do next (issue 15 item 6): what on_run() appends to a failure of the
// command at `path` ("webhooks show") whose message names no command: for a NOT_FOUND the command that
// lists the ids, for a refused value or a usage error the command's --help; else "".
std::string next_step(const std::string& path, int exit_code);

// Sets `ctx.action` to `fn` when `sub` is the selected command.
void on_run(CLI::App& sub, CliContext& ctx, std::function<CliStatus()> fn);

}  // namespace alumia::cli

namespace alumia::cli {

// daemon.json, written by the daemon once it listens: {"url", "pid", "version"}.
struct DaemonState {
  std::string url;
  pid_t pid = 0;
  std::string version;
};
std::optional<DaemonState> read_state_file(const std::filesystem::path& path);

// The systemd user unit `daemon install-service` writes: packaging/alumia-connectd.service with
// ExecStart naming `daemon` (and --data-dir when one was given or the paths are flat) and
// ReadWritePaths the resolved directories (quoted and escaped as systemd reads them; each may be
// missing). Fails on a path with a control character.
CliResult<std::string> systemd_user_unit(const std::filesystem::path& daemon, const Paths& paths,
                                         const std::string& data_dir_flag);

}  // namespace alumia::cli
