#include "process.hpp"

#include "postgres.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace alumia::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "alumia test XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  m_path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::mutex g_store_mutex;
std::map<std::string, std::string>& stores_of_dirs() {  // data dir → the name of its database
  static std::map<std::string, std::string> stores;
  return stores;
}

// The data directory a daemon (or a CLI that may start one) spawned with `argv` and `env` uses, as the
// daemon resolves it (common/config/config.cpp resolve_paths): --data-dir, ALUMIA_HOME, XDG_DATA_HOME,
// HOME; absolute and normal, so that two spellings of one directory are one key.
std::optional<std::string> data_dir_of(const std::vector<std::string>& argv,
                                       const std::map<std::string, std::string>& env) {
  std::optional<fs::path> dir;
  for (std::size_t i = 0; i < argv.size() && !dir; ++i) {
    if (argv[i] == "--data-dir" && i + 1 < argv.size()) dir = argv[i + 1];
    else if (argv[i].rfind("--data-dir=", 0) == 0) dir = argv[i].substr(11);
  }
  auto from_env = [&](const char* name) -> std::optional<fs::path> {
    const auto it = env.find(name);
    return it == env.end() || it->second.empty() ? std::nullopt : std::optional<fs::path>(it->second);
  };
  if (!dir) dir = from_env("ALUMIA_HOME");
  if (!dir)
    if (auto x = from_env("XDG_DATA_HOME")) dir = *x / "alumia-connect";
  if (!dir)
    if (auto h = from_env("HOME")) dir = *h / ".local/share/alumia-connect";
  if (!dir) return std::nullopt;
  return fs::absolute(*dir).lexically_normal().string();
}

// The PostgreSQL pass (tests/CMakeLists.txt, functional-pg/*): with ALUMIA_TEST_STORE=postgres in the
// environment, every daemon a test spawns, and every CLI command of the `daemon` group (which may start
// one), gets ALUMIA_STORE naming a database of the binary's shared server, one fresh database per data
// directory: a daemon restarted on its data dir finds its store again, and daemons in different data dirs
// never share one. A spawn that chooses its store itself (ALUMIA_STORE or --store) is left alone.
void route_store_to_postgres(const std::vector<std::string>& argv, std::map<std::string, std::string>& env) {
  const auto mode = env.find("ALUMIA_TEST_STORE");
  if (mode == env.end() || mode->second != "postgres") return;
  const bool daemon = std::find(argv.begin(), argv.end(), ALUMIA_DAEMON_BIN) != argv.end();
  const bool cli_daemon_group =
      !argv.empty() && argv[0] == ALUMIA_CLI_BIN && std::find(argv.begin(), argv.end(), "daemon") != argv.end();
  if (!daemon && !cli_daemon_group) return;
  if (env.contains("ALUMIA_STORE")) return;
  for (const auto& a : argv)
    if (a == "--store" || a.rfind("--store=", 0) == 0) return;
  const auto dir = data_dir_of(argv, env);
  if (!dir) return;
  const std::lock_guard lock(g_store_mutex);
  auto it = stores_of_dirs().find(*dir);
  if (it == stores_of_dirs().end()) {
    if (postgres_bin_dir().empty())
      throw std::runtime_error(
          "ALUMIA_TEST_STORE=postgres, but PostgreSQL 15 is not installed: run "
          "scripts/install-deps.sh");
    it = stores_of_dirs().emplace(*dir, shared_postgres().fresh_database()).first;
  }
  env["ALUMIA_STORE"] = shared_postgres().uri(it->second);
}

}  // namespace

std::optional<std::string> postgres_database_of(const fs::path& data_dir) {
  const std::lock_guard lock(g_store_mutex);
  const auto it = stores_of_dirs().find(fs::absolute(data_dir).lexically_normal().string());
  if (it == stores_of_dirs().end()) return std::nullopt;
  return it->second;
}

bool testing_on_postgres() {
  const char* mode = std::getenv("ALUMIA_TEST_STORE");
  return mode != nullptr && std::string_view(mode) == "postgres";
}

Process::Process(std::vector<std::string> argv, const EnvOverrides& env, const std::string& stdin_data) {
  char tmpl[] = "/tmp/alumia-proc-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  m_dir = tmpl;
  {
    std::ofstream in(m_dir / "stdin", std::ios::binary);
    in << stdin_data;
  }
  std::map<std::string, std::string> envmap;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) envmap[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v) envmap[k] = *v;
    else envmap.erase(k);
  }
  route_store_to_postgres(argv, envmap);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : envmap) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string in_path = (m_dir / "stdin").string(), out_path = (m_dir / "stdout").string(),
                    err_path = (m_dir / "stderr").string();
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // own group, so stray children can be killed with it
  const int rc = ::posix_spawn(&m_pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot spawn " + argv[0]);
}

Process::~Process() {
  if (!m_status && m_pid > 0) {
    ::kill(-m_pid, SIGKILL);
    int st = 0;
    ::waitpid(m_pid, &st, 0);
  } else if (m_pid > 0) {
    ::kill(-m_pid, SIGKILL);  // any descendants left in the group
  }
  std::error_code ec;
  fs::remove_all(m_dir, ec);
}

bool Process::running() {
  if (m_status) return false;
  int st = 0;
  const pid_t r = ::waitpid(m_pid, &st, WNOHANG);
  if (r == m_pid) {
    m_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (eventually([&] { return !running(); }, timeout, std::chrono::milliseconds(5))) return m_status;
  ::kill(-m_pid, SIGKILL);
  int st = 0;
  ::waitpid(m_pid, &st, 0);
  m_status = 128 + SIGKILL;
  return std::nullopt;
}

void Process::signal(int sig) {
  if (!m_status) ::kill(m_pid, sig);
}

std::string Process::out() const { return read_file(m_dir / "stdout"); }
std::string Process::err() const { return read_file(m_dir / "stderr"); }

ProcessResult run(std::vector<std::string> argv, const EnvOverrides& env, const std::string& stdin_data,
                  std::chrono::milliseconds timeout) {
  Process p(std::move(argv), env, stdin_data);
  auto code = p.wait(timeout);
  return ProcessResult{code.value_or(-1), p.out(), p.err()};
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout, std::chrono::milliseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);  // polling interval, not a wait for an event
  }
}

HttpReply http_request(const std::string& method, const std::string& url,
                       const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                       bool no_content_length) {
  // Parse scheme://host:port/path
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  httplib::Client cli(origin);
  cli.set_connection_timeout(5);
  cli.set_read_timeout(30);
  httplib::Request req;
  req.method = method;
  req.path = path;
  for (const auto& [k, v] : headers) req.headers.emplace(k, v);
  req.body = body;
  if (!body.empty() && !req.has_header("Content-Type")) req.set_header("Content-Type", "application/json");
  if (no_content_length) req.set_header("Transfer-Encoding", "chunked");
  httplib::Response res;
  httplib::Error err;
  HttpReply out;
  if (!cli.send(req, res, err)) {
    out.status = -1;
    out.body = httplib::to_string(err);
    return out;
  }
  out.status = res.status;
  out.body = res.body;
  for (const auto& [k, v] : res.headers) out.headers.emplace(k, v);
  return out;
}

RawReply raw_exchange(int port, const std::string& request) {
  RawReply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string data;
  char buf[4096];
  std::size_t need = std::string::npos;
  for (;;) {
    const auto end = data.find("\r\n\r\n");
    if (end != std::string::npos && need == std::string::npos) {
      out.head = data.substr(0, end);
      std::smatch m;
      static const std::regex k_cl("[Cc]ontent-[Ll]ength: *([0-9]+)");
      need = std::regex_search(out.head, m, k_cl) ? end + 4 + std::stoul(m[1].str()) : end + 4;
    }
    if (need != std::string::npos && data.size() >= need) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (data.rfind("HTTP/1.", 0) == 0 && data.size() > 12) out.status = std::stoi(data.substr(9, 3));
  if (need != std::string::npos && out.head.size() + 4 <= data.size()) out.body = data.substr(out.head.size() + 4);
  return out;
}

Daemon::Daemon(const fs::path& home, Options options)
    : m_home(home), m_expected_errors(std::move(options.expected_errors)) {
  std::vector<std::string> argv{ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0"};
  if (options.with_keyring_file) {
    argv.push_back("--keyring");
    argv.push_back("file");
  }
  for (auto& a : options.extra_args) argv.push_back(a);
  EnvOverrides env = options.env;
  env.emplace("ALUMIA_HOME", home.string());
  m_proc = std::make_unique<Process>(argv, env);
  const fs::path state = home / "daemon.json";
  const bool up = eventually(
      [&] {
        if (!m_proc->running()) return true;
        if (!fs::exists(state)) return false;
        auto j = nlohmann::json::parse(read_file(state), nullptr, false);
        if (j.is_discarded() || !j.contains("pid") || j["pid"] != m_proc->pid()) return false;
        m_url = j["url"].get<std::string>();
        return true;
      },
      std::chrono::seconds(30));
  if (!up || !m_proc->running()) throw std::runtime_error("daemon did not start: " + m_proc->err());
  m_port = std::stoi(m_url.substr(m_url.rfind(':') + 1));
}

Daemon::~Daemon() {
  const int code = stop();
  // A test already failing with an exception (REQUIRE) is reported as such; no check piles on.
  if (std::uncaught_exceptions() > 0) return;
  const std::vector<std::string> unexpected = unexpected_error_lines();
  INFO("daemon log:\n" << log());
  CHECK(code == m_expected_exit);
  CHECK(unexpected.empty());
}

int Daemon::stop() {
  if (m_stopped) return m_exit_code;
  m_stopped = true;
  m_proc->signal(SIGTERM);
  m_exit_code = m_proc->wait(std::chrono::seconds(20)).value_or(-1);
  return m_exit_code;
}

std::string log_level_of(const std::string& line) {
  const auto first = line.find(' ');
  if (first == std::string::npos) return {};
  const auto second = line.find(' ', first + 1);
  return line.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
}

std::vector<std::string> Daemon::unexpected_error_lines() const { return error_lines_except(log(), m_expected_errors); }

std::vector<std::string> error_lines_except(const std::string& log, const std::vector<std::string>& expected) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    const std::string level = log_level_of(line);
    if (level != "error" && level != "critical") continue;
    bool declared = false;
    for (const auto& e : expected) declared = declared || line.find(e) != std::string::npos;
    if (!declared) out.push_back(line);
  }
  return out;
}

std::string Daemon::log() const { return m_proc->err(); }

std::string Daemon::key() const {
  std::string k = read_file(m_home / "key");
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
  return k;
}

ProcessResult Daemon::cli(std::vector<std::string> args, const EnvOverrides& env, const std::string& stdin_data,
                          std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv{ALUMIA_CLI_BIN};
  for (auto& a : args) argv.push_back(a);
  EnvOverrides e = env;
  e.emplace("ALUMIA_HOME", m_home.string());
  e.emplace("NO_COLOR", "1");
  e.emplace("ALUMIA_API_KEY", std::nullopt);
  return run(argv, e, stdin_data, timeout);
}

HttpReply Daemon::api(const std::string& method, const std::string& path, const std::string& body,
                      const std::optional<std::string>& key) const {
  return http_request(method, m_url + path, {{"Authorization", "Bearer " + key.value_or(this->key())}}, body);
}

}  // namespace alumia::test
