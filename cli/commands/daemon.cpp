// alumia-connect daemon status|start|stop|logs
#include "app.hpp"

#include <signal.h>

#include <alumia/base/try.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>

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
  const auto dir = self_exe_dir();
  const auto exe = dir / k_daemon_binary;
  std::error_code ec;
  if (dir.empty() || !std::filesystem::exists(exe, ec))
    return cli_fail(k_exit_error, "cannot find " + std::string(k_daemon_binary) + " next to this program (looked for " +
                                      exe.string() + ")");
  std::vector<std::string> args;
  if (!ctx.global.data_dir.empty()) args.insert(args.end(), {"--data-dir", ctx.global.data_dir});
  if (!o.listen.empty()) args.insert(args.end(), {"--listen", o.listen});
  const auto log = log_file(p);
  auto pid = TRY(spawn_daemon(exe, args, log));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  InterruptGuard interrupt;
  for (;;) {
    if (auto code = child_exited(pid))
      return cli_fail(k_exit_error, "alumia-connectd exited with status " + std::to_string(*code) +
                                        " while starting; its log (" + log.string() + ") ends with:\n" +
                                        tail_lines(log, 10));
    if (auto st = read_state_file(p.state_file()); st && st->pid == pid) {
      if (auto u = parse_daemon_url(st->url); u && daemon_answers(*u, 1000ms)) {
        if (ctx.global.json) ctx.print_data(json{{"url", u->url()}, {"pid", pid}, {"logFile", log.string()}});
        else if (!ctx.global.quiet)
          ctx.out << "alumia-connectd started at " << u->url() << " (pid " << pid << "); log: " << log.string() << '\n';
        return {};
      }
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return cli_fail(k_exit_timeout, "alumia-connectd (pid " + std::to_string(pid) + ") did not become ready within " +
                                          std::to_string(o.timeout_s) + " s; see " + log.string());
    if (interrupt.wait(k_poll)) return cli_fail(k_exit_interrupted, "interrupted");
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
                                      " is not alumia-connectd (stale state file); not signalling it");
  if (::kill(pid, SIGTERM) != 0)
    return cli_fail(k_exit_error,
                    "cannot signal alumia-connectd (pid " + std::to_string(pid) + "): " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  InterruptGuard interrupt;
  while (pid_alive(pid) && process_name(pid) == k_daemon_binary) {
    if (std::chrono::steady_clock::now() >= deadline)
      return cli_fail(k_exit_timeout, "alumia-connectd (pid " + std::to_string(pid) + ") did not exit within " +
                                          std::to_string(timeout_s) + " s after SIGTERM");
    if (interrupt.wait(k_poll)) return cli_fail(k_exit_interrupted, "interrupted");
  }
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
  ctx.out << tail_lines(log, static_cast<std::size_t>(lines));
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
}

}  // namespace alumia::cli
