#include "terminal.hpp"

#include <alumia/base/secret.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace alumia::cli {
namespace {

constexpr std::array<const char*, 9> k_browser_env{
    "DISPLAY", "WAYLAND_DISPLAY",  "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR",  "HOME",
    "PATH",    "FAKE_BROWSER_JAR", "FAKE_BROWSER_LOG",         "FAKE_BROWSER_WAIT"};

// Empty on purpose: installed without SA_RESTART so that a blocking read() returns EINTR.
void on_sigint_interrupt_read(int) {}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Runs in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(int err_fd, int out_fd, const char* path, char* const* argv, char* const* envp) {
  ::setsid();
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) ::dup2(devnull, 0);
  const int out = out_fd >= 0 ? out_fd : devnull;
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  if (envp != nullptr) ::execve(path, argv, envp);
  else ::execv(path, argv);
  const int e = errno;
  [[maybe_unused]] auto n = ::write(err_fd, &e, sizeof e);
  ::_exit(127);
}

// fork + exec with a close-on-exec pipe that reports an exec failure.
CliResult<pid_t> fork_exec(const std::string& path, std::vector<std::string> args, std::vector<std::string>* env,
                           int out_fd) {
  auto argv = c_strings(args);
  std::vector<char*> envp;
  if (env != nullptr) envp = c_strings(*env);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return cli_fail(k_exit_error, std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return cli_fail(k_exit_error, std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    ::close(fds[0]);
    exec_child(fds[1], out_fd, path.c_str(), argv.data(), env != nullptr ? envp.data() : nullptr);
  }
  ::close(fds[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(fds[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(fds[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    ::waitpid(pid, nullptr, 0);
    return cli_fail(k_exit_error, "cannot run " + path + ": " + std::strerror(child_errno));
  }
  return pid;
}

}  // namespace

TerminalInfo detect_terminal() { return {::isatty(0) == 1, ::isatty(1) == 1, ::isatty(2) == 1}; }

std::size_t terminal_columns(const EnvLookup& env) {
  if (auto c = env("COLUMNS");
      c && !c->empty() && c->size() <= 4 && c->find_first_not_of("0123456789") == std::string::npos) {
    const auto n = std::stoul(*c);
    if (n >= 20 && n <= 1000) return n;
  }
  winsize ws{};
  if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

CliResult<std::string> prompt_line(std::ostream& err, const std::string& prompt, bool secret) {
  struct sigaction sa {};
  struct sigaction old_sa {};
  sa.sa_handler = on_sigint_interrupt_read;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ::sigaction(SIGINT, &sa, &old_sa);
  termios old_tio{};
  const bool have_tio = ::tcgetattr(0, &old_tio) == 0;
  if (secret && have_tio) {
    termios t = old_tio;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    t.c_lflag |= static_cast<tcflag_t>(ICANON | ISIG);
    ::tcsetattr(0, TCSAFLUSH, &t);
  }
  err << prompt << std::flush;
  std::string line;
  bool interrupted = false;
  bool eof = false;
  for (;;) {
    char c = 0;
    const ssize_t n = ::read(0, &c, 1);
    if (n < 0 && errno == EINTR) {
      interrupted = true;
      break;
    }
    if (n <= 0) {
      eof = true;
      break;
    }
    if (c == '\n') break;
    line.push_back(c);
  }
  if (secret && have_tio) ::tcsetattr(0, TCSAFLUSH, &old_tio);
  ::sigaction(SIGINT, &old_sa, nullptr);
  if (secret || interrupted) err << '\n';
  if (interrupted) {
    wipe_string(line);
    return cli_fail(k_exit_interrupted, "interrupted");
  }
  if (eof && line.empty()) return usage_fail("no input on the terminal");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

InterruptGuard::InterruptGuard(std::initializer_list<int> signals) {
  sigemptyset(&m_set);
  sigaddset(&m_set, SIGINT);
  for (const int sig : signals) sigaddset(&m_set, sig);
  ::sigprocmask(SIG_BLOCK, &m_set, &m_old);
}

InterruptGuard::~InterruptGuard() {
  // Drop a signal that is still pending so restoring the mask does not kill us afterwards.
  timespec zero{0, 0};
  while (::sigtimedwait(&m_set, nullptr, &zero) > 0) {
  }
  ::sigprocmask(SIG_SETMASK, &m_old, nullptr);
}

bool InterruptGuard::wait(std::chrono::milliseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>((d.count() % 1000) * 1000000)};
  return ::sigtimedwait(&m_set, nullptr, &ts) > 0;
}

std::optional<std::string> find_in_path(const std::string& name, const std::string& path_env) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  std::size_t pos = 0;
  while (pos <= path_env.size()) {
    auto end = path_env.find(':', pos);
    if (end == std::string::npos) end = path_env.size();
    std::string dir = path_env.substr(pos, end - pos);
    if (dir.empty()) dir.push_back('.');
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    pos = end + 1;
  }
  return std::nullopt;
}

std::vector<std::string> browser_environment(const EnvLookup& env) {
  std::vector<std::string> out;
  for (const char* name : k_browser_env)
    if (auto v = env(name)) out.push_back(std::string(name) + "=" + *v);
  return out;
}

Surroundings detect_surroundings(const EnvLookup& env) {
  Surroundings s;
  const auto set = [&env](const char* name) {
    auto v = env(name);
    return v && !v->empty();
  };
  s.ssh = set("SSH_CONNECTION") || set("SSH_CLIENT") || set("SSH_TTY");
  if (auto c = env("SSH_CONNECTION")) {
    // "client-address client-port server-address server-port"
    std::istringstream fields(*c);
    std::string client, client_port, server;
    if (fields >> client >> client_port >> server) s.ssh_server = server;
  }
  s.display = set("DISPLAY") || set("WAYLAND_DISPLAY");
  s.browser = env("BROWSER").value_or("");
  if (auto c = env("container"); c && !c->empty()) s.container = *c;  // systemd's and podman's convention
  else if (::access("/.dockerenv", F_OK) == 0) s.container = "docker";
  else if (::access("/run/.containerenv", F_OK) == 0) s.container = "podman";
  return s;
}

bool no_display(const EnvLookup& env) { return !detect_surroundings(env).can_open_browser(); }

CliResult<pid_t> open_browser(const std::string& url, const EnvLookup& env) {
  std::string opener = "xdg-open";
  if (auto b = env("BROWSER")) opener = b->substr(0, b->find(':'));
  const auto path = find_in_path(opener, env("PATH").value_or("/usr/local/bin:/usr/bin:/bin"));
  if (!path) return cli_fail(k_exit_error, "cannot find the browser opener '" + opener + "' (set $BROWSER)");
  auto child_env = browser_environment(env);
  return fork_exec(*path, {opener, url}, &child_env, -1);
}

void reap_child(pid_t pid) {
  if (pid > 0) ::waitpid(pid, nullptr, WNOHANG);
}

CliResult<pid_t> spawn_daemon(const std::filesystem::path& exe, const std::vector<std::string>& args,
                              const std::filesystem::path& log_file) {
  const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log < 0) return cli_fail(k_exit_error, "cannot open " + log_file.string() + ": " + std::strerror(errno));
  std::vector<std::string> argv{exe.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto pid = fork_exec(exe.string(), std::move(argv), nullptr, log);
  ::close(log);
  return pid;
}

std::optional<int> child_exited(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool pid_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

std::string process_name(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

std::filesystem::path self_exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return p.parent_path();
}

Spinner::Spinner(std::ostream& err, bool enabled, std::string text)
    : m_err(err), m_enabled(enabled), m_text(std::move(text)) {}

Spinner::~Spinner() { clear(); }

void Spinner::tick() {
  if (!m_enabled) return;
  static constexpr std::array<char, 4> k_frames{'|', '/', '-', '\\'};
  const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m_start);
  m_err << "\r\033[K" << k_frames[m_frame++ % k_frames.size()] << ' ' << m_text << " (" << elapsed.count() << " s)"
        << std::flush;
  m_drawn = true;
}

void Spinner::clear() {
  if (!m_drawn) return;
  m_err << "\r\033[K" << std::flush;
  m_drawn = false;
}

}  // namespace alumia::cli
