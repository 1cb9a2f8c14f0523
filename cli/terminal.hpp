#pragma once
// The terminal and the process around the CLI: TTY detection, prompts with echo off, waiting
// that Ctrl-C can interrupt, the system browser, and spawning/stopping the daemon.
#include "failure.hpp"

#include <alumia/config/config.hpp>

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace alumia::cli {

struct TerminalInfo {
  bool stdin_tty = false;
  bool stdout_tty = false;
  bool stderr_tty = false;
};
TerminalInfo detect_terminal();
// The width of the terminal on stdout: $COLUMNS when it is a number from 20 to 1000, else the
// window size of fd 1 (TIOCGWINSZ), else 0 (unknown: tables are not cut).
std::size_t terminal_columns(const EnvLookup& env);

// Prints `prompt` on `err` and reads one line from the terminal on fd 0. `secret` turns echo off
// for the read (restored on every path, Ctrl-C included, which gives exit 130).
CliResult<std::string> prompt_line(std::ostream& err, const std::string& prompt, bool secret);

// While alive, SIGINT (and any further `signals`) is blocked and collected; wait() sleeps up to `d`
// and reports whether one arrived, so a polling loop can stop cleanly (exit 130) without a signal
// handler. `listen` adds SIGTERM and SIGHUP: a closed terminal or a `kill` must still clean up.
class InterruptGuard {
 public:
  explicit InterruptGuard(std::initializer_list<int> signals = {});
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  bool wait(std::chrono::milliseconds d);  // true: interrupted

 private:
  sigset_t m_set{};
  sigset_t m_old{};
};

// The opener: $BROWSER (first entry of a colon-separated list) or xdg-open, resolved on PATH.
std::optional<std::string> find_in_path(const std::string& name, const std::string& path_env);
// The environment handed to the browser (OAUTH.md item 6): only the variables a desktop opener
// needs, plus FAKE_BROWSER_JAR / FAKE_BROWSER_LOG / FAKE_BROWSER_WAIT for tests.
std::vector<std::string> browser_environment(const EnvLookup& env);
// Where the CLI runs, for `connect` (issue 15 item 3): whether a browser can be opened here, and
// what to tell the user about reaching the daemon's loopback callback from another machine.
struct Surroundings {
  bool ssh = false;        // SSH_CONNECTION, SSH_CLIENT or SSH_TTY is set
  std::string ssh_server;  // the address this machine was reached on (SSH_CONNECTION's third field)
  bool display = false;    // DISPLAY or WAYLAND_DISPLAY
  std::string browser;     // $BROWSER
  std::string container;   // "docker", "podman", the `container` variable's value, or "" (none seen)
  bool can_open_browser() const { return !browser.empty() || (display && !ssh); }
};
// From the environment, plus /.dockerenv and /run/.containerenv for a container.
Surroundings detect_surroundings(const EnvLookup& env);
// True when there is nowhere to show a browser: no DISPLAY/WAYLAND_DISPLAY and no $BROWSER, or an
// SSH session without $BROWSER.
bool no_display(const EnvLookup& env);
// fork + execve(opener, [opener, url], minimal env); never through a shell. Returns the child pid.
CliResult<pid_t> open_browser(const std::string& url, const EnvLookup& env);
// Reaps an opener child without blocking.
void reap_child(pid_t pid);

// Spawns `exe args...` in a new session with stdin from /dev/null and stdout/stderr appended to
// `log_file` (0600). The environment is inherited (it never carries secrets on argv).
CliResult<pid_t> spawn_daemon(const std::filesystem::path& exe, const std::vector<std::string>& args,
                              const std::filesystem::path& log_file);
// Reaps `pid` without blocking: the exit status if it has exited.
std::optional<int> child_exited(pid_t pid);
bool pid_alive(pid_t pid);
// /proc/PID/comm (without the newline), or "".
std::string process_name(pid_t pid);
// The directory of /proc/self/exe.
std::filesystem::path self_exe_dir();

// A one-character spinner on stderr with the time elapsed since it was made; the caller enables it
// only on a TTY, and never with NO_COLOR, --json or --quiet.
class Spinner {
 public:
  Spinner(std::ostream& err, bool enabled, std::string text);
  ~Spinner();
  Spinner(const Spinner&) = delete;
  Spinner& operator=(const Spinner&) = delete;
  void tick();
  void clear();

 private:
  std::ostream& m_err;
  bool m_enabled;
  std::string m_text;
  std::size_t m_frame = 0;
  bool m_drawn = false;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

}  // namespace alumia::cli
