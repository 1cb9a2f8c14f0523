// alumia-connect daemon status|start|stop|logs|install-service
#include "app.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <alumia/base/fs.hpp>
#include <alumia/base/try.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace alumia::embedded {
extern const std::string_view systemd_user_unit;
}

namespace alumia::cli {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_daemon_binary = "alumia-connectd";
constexpr auto k_poll = 100ms;

std::filesystem::path log_file(const Paths& p) { return p.data_dir / "daemon.log"; }

std::string tail_lines(const std::filesystem::path& file, std::size_t n) {
  std::ifstream in(file);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The daemon binary: next to this program first (one build's bin/, or /usr/bin), then on PATH.
CliResult<std::filesystem::path> find_daemon(const CliContext& ctx) {
  const auto dir = self_exe_dir();
  std::error_code ec;
  if (!dir.empty()) {
    const auto next_to = dir / k_daemon_binary;
    if (std::filesystem::is_regular_file(next_to, ec) && ::access(next_to.c_str(), X_OK) == 0) return next_to;
  }
  if (auto on_path = find_in_path(k_daemon_binary, ctx.env("PATH").value_or("")))
    return std::filesystem::absolute(*on_path, ec);
  return cli_fail(k_exit_error, "cannot find " + std::string(k_daemon_binary) + " next to this program (in " +
                                    dir.string() + ") or on PATH; a build puts both programs in build/bin/ " +
                                    "(`make install`, or add that directory to PATH)");
}

// "store" is a path or {backend, path}.
std::string store_text(const json& status) {
  if (status.contains("store") && status["store"].is_object()) {
    const auto& s = status["store"];
    return jstr(s, "backend") + (jstr(s, "path").empty() ? "" : " " + jstr(s, "path"));
  }
  return jdisplay(status, "store");
}

CliStatus status(CliContext& ctx) {
  auto client = ctx.client();
  if (!client) {
    if (client.error().exit_code == k_exit_unreachable && !ctx.global.json)
      return cli_fail(k_exit_unreachable, "alumia-connectd is not running: " + client.error().message);
    return std::unexpected(client.error());
  }
  auto data = TRY((*client)->get("/api/v1/status"));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  const json keyring = data.contains("keyring") ? data["keyring"] : json::object();
  std::vector<std::pair<std::string, std::string>> f{{"status", "running"},
                                                     {"version", jdisplay(data, "version")},
                                                     {"pid", jdisplay(data, "pid")},
                                                     {"url", jdisplay(data, "url")},
                                                     {"public url", jdisplay(data, "publicUrl")},
                                                     {"keyring", jdisplay(keyring, "backend")},
                                                     {"store", store_text(data)},
                                                     {"started", jdisplay(data, "startedAt")},
                                                     {"log", ctx.paths() ? log_file(*ctx.paths()).string() : "-"}};
  print_fields(ctx.out, f, [&ctx](const std::string& key, const std::string& value) {
    return key == "status" ? ctx.paint(value, "32") : value;
  });
  if (jstr(keyring, "backend") == "file")
    ctx.warn("the master key is kept in a file, not in the Secret Service" +
             (jstr(keyring, "warning").empty() ? std::string() : ": " + jstr(keyring, "warning")));
  return {};
}

struct StartOptions {
  std::string listen;
  int timeout_s = 15;
};

CliStatus start(CliContext& ctx, const StartOptions& o) {
  const Paths p = TRY(ctx.paths());
  if (auto st = read_state_file(p.state_file()); st && pid_alive(st->pid)) {
    if (auto u = parse_daemon_url(st->url); u && daemon_answers(*u, 1000ms)) {
      if (ctx.global.json) ctx.print_data(json{{"url", u->url()}, {"pid", st->pid}, {"alreadyRunning", true}});
      else ctx.note("alumia-connectd is already running at " + u->url() + " (pid " + std::to_string(st->pid) + ")");
      return {};
    }
  }
  if (auto st = ensure_dirs(p); !st) return std::unexpected(from_error(st.error()));
  const auto exe = TRY(find_daemon(ctx));
  std::vector<std::string> args;
  if (!ctx.global.data_dir.empty()) args.insert(args.end(), {"--data-dir", ctx.global.data_dir});
  if (!o.listen.empty()) args.insert(args.end(), {"--listen", o.listen});
  const auto log = log_file(p);
  auto pid = TRY(spawn_daemon(exe, args, log));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  InterruptGuard interrupt;
  Spinner spinner(ctx.raw_err, ctx.progress(), "Starting alumia-connectd (pid " + std::to_string(pid) + ")...");
  for (;;) {
    spinner.tick();
    if (auto code = child_exited(pid)) {
      spinner.clear();
      return cli_fail(k_exit_error, "alumia-connectd exited with status " + std::to_string(*code) +
                                        " while starting; its log (" + log.string() + ") ends with:\n" +
                                        tail_lines(log, 10));
    }
    if (auto st = read_state_file(p.state_file()); st && st->pid == pid) {
      if (auto u = parse_daemon_url(st->url); u && daemon_answers(*u, 1000ms)) {
        spinner.clear();
        if (ctx.global.json) ctx.print_data(json{{"url", u->url()}, {"pid", pid}, {"logFile", log.string()}});
        else if (!ctx.global.quiet)
          ctx.out << "alumia-connectd started at " << u->url() << " (pid " << pid << "); log: " << log.string() << '\n';
        return {};
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      spinner.clear();
      return cli_fail(k_exit_timeout, "alumia-connectd (pid " + std::to_string(pid) + ") did not become ready within " +
                                          std::to_string(o.timeout_s) + " s; see " + log.string() +
                                          " (it may still be starting: `alumia-connect daemon status`)");
    }
    if (interrupt.wait(k_poll)) {
      spinner.clear();
      return cli_fail(k_exit_interrupted, "interrupted; alumia-connectd (pid " + std::to_string(pid) +
                                              ") may still be starting: `alumia-connect daemon status` tells");
    }
  }
}

CliStatus stop(CliContext& ctx, int timeout_s) {
  const Paths p = TRY(ctx.paths());
  auto st = read_state_file(p.state_file());
  if (!st || !pid_alive(st->pid)) {
    if (ctx.global.json) ctx.print_data(json{{"stopped", false}, {"running", false}});
    else ctx.note("alumia-connectd is not running");
    return {};
  }
  const pid_t pid = st->pid;
  if (process_name(pid) != k_daemon_binary)
    return cli_fail(k_exit_error, "pid " + std::to_string(pid) + " named in " + p.state_file().string() +
                                      " is not alumia-connectd (stale state file); not signalling it. Remove " +
                                      p.state_file().string() + " if no alumia-connectd runs");
  if (::kill(pid, SIGTERM) != 0)
    return cli_fail(k_exit_error, "cannot signal alumia-connectd (pid " + std::to_string(pid) +
                                      "): " + std::strerror(errno) + "; stop it as the user it runs as");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  InterruptGuard interrupt;
  Spinner spinner(ctx.raw_err, ctx.progress(), "Stopping alumia-connectd (pid " + std::to_string(pid) + ")...");
  while (pid_alive(pid) && process_name(pid) == k_daemon_binary) {
    spinner.tick();
    if (std::chrono::steady_clock::now() >= deadline) {
      spinner.clear();
      return cli_fail(k_exit_timeout, "alumia-connectd (pid " + std::to_string(pid) + ") did not exit within " +
                                          std::to_string(timeout_s) + " s after SIGTERM; wait longer with " +
                                          "`alumia-connect daemon stop --timeout 60`, or end it with `kill -KILL " +
                                          std::to_string(pid) + "`");
    }
    if (interrupt.wait(k_poll)) {
      spinner.clear();
      return cli_fail(k_exit_interrupted, "interrupted; alumia-connectd (pid " + std::to_string(pid) +
                                              ") was sent SIGTERM and may still be stopping: `alumia-connect " +
                                              "daemon status` tells");
    }
  }
  spinner.clear();
  if (ctx.global.json) ctx.print_data(json{{"stopped", true}, {"pid", pid}});
  else if (!ctx.global.quiet) ctx.out << "alumia-connectd stopped (pid " << pid << ")\n";
  return {};
}

CliStatus logs(CliContext& ctx, int lines) {
  const auto log = log_file(TRY(ctx.paths()));
  std::error_code ec;
  if (!std::filesystem::exists(log, ec))
    return cli_fail(
        error_info(ErrorCode::not_found).exit_code,
        "no log at " + log.string() + " (it exists only when `alumia-connect daemon start` started the daemon)");
  const std::string text = tail_lines(log, static_cast<std::size_t>(lines));
  if (ctx.global.json) {
    json j{{"logFile", log.string()}, {"lines", json::array()}};
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) j["lines"].push_back(line);
    ctx.print_data(j);
    return {};
  }
  ctx.out << text;
  return {};
}

// ---- install-service ----

struct InstallOptions {
  bool print = false;     // print the unit instead of writing it
  bool no_start = false;  // write (and enable) it, but do not start it
};

struct CommandResult {
  int status = -1;  // exit status; -1 when it did not run or did not finish in time
  std::string output;
};

// Runs argv (resolved on PATH by the caller) with stdin from /dev/null and stdout+stderr captured,
// killed after `timeout`. Never through a shell.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    r.output = std::strerror(rc);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (r.output.size() < 64 * 1024) r.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int st = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      r.output += "(killed after " + std::to_string(timeout.count()) + " ms)";
      return r;
    }
    std::this_thread::sleep_for(10ms);
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  while (!r.output.empty() && (r.output.back() == '\n' || r.output.back() == ' ')) r.output.pop_back();
  return r;
}

// A path as one word of a unit file line: '%' is a specifier ("%%" is one), '$' in ExecStart expands
// a variable ("$$" is one), and a word with a space, quote, backslash or ';' is double-quoted with C
// escapes (systemd unquotes both ExecStart and ReadWritePaths). `prefix` goes inside the quotes ("-":
// ignore a missing path). A control character cannot be written: refused.
CliResult<std::string> unit_word(const std::filesystem::path& p, bool exec, const std::string& prefix = {}) {
  const std::string s = p.string();
  std::string out;
  bool quote = false;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return cli_fail(k_exit_error, "cannot write a unit for the path " + terminal_safe(s) +
                                        ": it holds a control character (move it, or write the unit by hand)");
    if (c == ' ' || c == '"' || c == '\'' || c == '\\' || c == ';') quote = true;
    if (c == '%') out += "%%";
    else if (c == '$' && exec) out += "$$";
    else if (c == '"' || c == '\\') out += std::string("\\") + c;
    else out += c;
  }
  return quote ? "\"" + prefix + out + "\"" : prefix + out;
}

}  // namespace

// The packaged unit (packaging/alumia-connectd.service) with ExecStart and ReadWritePaths set to the
// daemon and the directories this CLI resolved (--data-dir passed on when it was given).
CliResult<std::string> systemd_user_unit(const std::filesystem::path& daemon, const Paths& p,
                                         const std::string& data_dir_flag) {
  std::string exec = "ExecStart=" + TRY(unit_word(daemon, true));
  if (!data_dir_flag.empty() || p.flat) exec += " --data-dir " + TRY(unit_word(p.data_dir, true));
  std::string rw = "ReadWritePaths=";
  std::vector<std::filesystem::path> dirs{p.data_dir};
  // A runtime directory of its own is under $XDG_RUNTIME_DIR, which is made anew at each login: its
  // parent, so that the daemon may create it again (without XDG_RUNTIME_DIR it is the data directory).
  const bool own_runtime = !p.flat && p.runtime_dir != p.data_dir && p.runtime_dir != p.config_dir;
  for (const auto& d : {p.config_dir, own_runtime ? p.runtime_dir.parent_path() : p.runtime_dir})
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  for (std::size_t i = 0; i < dirs.size(); ++i) rw += (i ? " " : "") + TRY(unit_word(dirs[i], false, "-"));
  std::string out;
  std::istringstream in{std::string(embedded::systemd_user_unit)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("ExecStart=")) line = exec;
    else if (line.starts_with("ReadWritePaths=")) line = rw;
    out += line + "\n";
  }
  return out;
}

namespace {

constexpr const char* k_unit_name = "alumia-connectd.service";

std::filesystem::path user_unit_dir(const CliContext& ctx) {
  if (auto x = ctx.env("XDG_CONFIG_HOME"); x && !x->empty() && x->front() == '/')
    return std::filesystem::path(*x) / "systemd/user";
  return std::filesystem::path(ctx.env("HOME").value_or("")) / ".config/systemd/user";
}

CliStatus install_service(CliContext& ctx, const InstallOptions& o) {
  const Paths p = TRY(ctx.paths());
  const auto exe = TRY(find_daemon(ctx));
  const std::string unit = TRY(systemd_user_unit(exe, p, ctx.global.data_dir));
  if (o.print) {
    if (ctx.global.json)
      ctx.print_data(
          json{{"unitFile", (user_unit_dir(ctx) / k_unit_name).string()}, {"daemon", exe.string()}, {"unit", unit}});
    else ctx.out << unit;
    return {};
  }
  if (auto st = ensure_dirs(p); !st) return std::unexpected(from_error(st.error()));
  const auto dir = user_unit_dir(ctx);
  const auto file = dir / k_unit_name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return cli_fail(k_exit_error, "cannot create " + dir.string() + ": " + ec.message());
  if (auto st = write_file_atomic_0600(file, unit); !st) return std::unexpected(from_error(st.error()));
  json result{{"unitFile", file.string()}, {"daemon", exe.string()}, {"enabled", false}, {"started", false}};
  const auto say = [&](const std::string& text) {
    if (!ctx.global.json && !ctx.global.quiet) ctx.out << text << '\n';
  };
  say("wrote " + file.string() + " (ExecStart=" + exe.string() + ")");

  const std::string manual =
      "systemctl --user daemon-reload && systemctl --user enable --now " + std::string(k_unit_name);
  const auto systemctl = find_in_path("systemctl", ctx.env("PATH").value_or(""));
  const auto not_answering = [&](const std::string& why) -> CliStatus {
    result["systemctlAnswers"] = false;
    result["next"] = manual;
    if (ctx.global.json) ctx.print_data(result);
    ctx.warn(why + "; the unit is written but not enabled. In a login session of this user (or after `loginctl " +
             "enable-linger " + ctx.env("USER").value_or("$USER") + "`) run: " + manual +
             ". Without systemd, `alumia-connect daemon start` runs the daemon in the background.");
    return {};
  };
  if (!systemctl) return not_answering("systemctl is not on PATH");
  constexpr auto k_timeout = std::chrono::seconds(20);
  if (auto probe = run_command({*systemctl, "--user", "show-environment"}, k_timeout); probe.status != 0)
    return not_answering("`systemctl --user` does not answer here (" +
                         (probe.output.empty() ? "exit " + std::to_string(probe.status) : probe.output) +
                         "): no user service manager in this session (su, sudo, a container or an SSH session "
                         "without one)");
  result["systemctlAnswers"] = true;
  if (auto r = run_command({*systemctl, "--user", "daemon-reload"}, k_timeout); r.status != 0)
    return cli_fail(k_exit_error, "systemctl --user daemon-reload failed: " + r.output + "; then run: " + manual);
  // A daemon started otherwise holds the store's lock: the unit's would fail to start.
  std::optional<pid_t> running;
  if (auto st = read_state_file(p.state_file()); st && pid_alive(st->pid) && process_name(st->pid) == k_daemon_binary)
    running = st->pid;
  const bool start_now = !o.no_start && !running;
  std::vector<std::string> enable{*systemctl, "--user", "enable"};
  if (start_now) enable.push_back("--now");
  enable.push_back(k_unit_name);
  if (auto r = run_command(enable, k_timeout); r.status != 0)
    return cli_fail(k_exit_error, "`systemctl --user enable" + std::string(start_now ? " --now" : "") + " " +
                                      k_unit_name + "` failed: " + r.output + "; see `systemctl --user status " +
                                      k_unit_name + "` and `journalctl --user -u " + k_unit_name + "`");
  result["enabled"] = true;
  result["started"] = start_now;
  if (ctx.global.json) {
    ctx.print_data(result);
  } else if (start_now) {
    say("enabled and started " + std::string(k_unit_name) + " (logs: journalctl --user -u " + k_unit_name + ")");
  } else {
    say("enabled " + std::string(k_unit_name) + "; start it with: systemctl --user start " + k_unit_name);
    if (running)
      ctx.note("alumia-connectd already runs (pid " + std::to_string(*running) +
               ", not under systemd): stop it first with `alumia-connect daemon stop`");
  }
  return {};
}

}  // namespace

void register_daemon(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("daemon", "Start, stop and inspect alumia-connectd");
  group->require_subcommand(1);
  auto* st = group->add_subcommand("status", "Show whether the daemon runs, its version, URL and keyring");
  on_run(*st, ctx, [&ctx] { return status(ctx); });

  auto so = std::make_shared<StartOptions>();
  auto* sa = group->add_subcommand("start", "Start alumia-connectd in the background (for systems without systemd)");
  sa->add_option("--listen", so->listen, "Control listener ADDR:PORT passed to the daemon")->type_name("ADDR:PORT");
  sa->add_option("--timeout", so->timeout_s, "Seconds to wait until it answers (default 15)")
      ->check(CLI::Range(1, 3600))
      ->type_name("S");
  on_run(*sa, ctx, [&ctx, so] { return start(ctx, *so); });

  auto stop_timeout = std::make_shared<int>(15);
  auto* sp = group->add_subcommand("stop", "Stop the daemon (SIGTERM) and wait until it has exited");
  sp->add_option("--timeout", *stop_timeout, "Seconds to wait (default 15)")
      ->check(CLI::Range(1, 3600))
      ->type_name("S");
  on_run(*sp, ctx, [&ctx, stop_timeout] { return stop(ctx, *stop_timeout); });

  auto lines = std::make_shared<int>(50);
  auto* lg = group->add_subcommand("logs", "Print the end of the log of a daemon started with `daemon start`");
  lg->add_option("-n,--lines", *lines, "Number of lines (default 50)")->check(CLI::Range(1, 100000))->type_name("N");
  on_run(*lg, ctx, [&ctx, lines] { return logs(ctx, *lines); });

  auto io = std::make_shared<InstallOptions>();
  auto* is = group->add_subcommand(
      "install-service",
      "Write the systemd user unit (~/.config/systemd/user/alumia-connectd.service), enable and start it");
  is->add_flag("--print", io->print, "Print the unit instead of writing it");
  is->add_flag("--no-start", io->no_start, "Write and enable the unit, but do not start it");
  on_run(*is, ctx, [&ctx, io] { return install_service(ctx, *io); });
}

}  // namespace alumia::cli
