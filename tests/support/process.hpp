#pragma once
// Test support: temp dirs, child processes with captured output, the real daemon and CLI.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace alumia::test {

// A temp directory whose path contains a space; removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed
  std::string out;
  std::string err;
};

using EnvOverrides = std::map<std::string, std::optional<std::string>>;  // nullopt removes

// True in the functional suite's PostgreSQL pass (ALUMIA_TEST_STORE=postgres; tests/CMakeLists.txt
// functional-pg/*), where every daemon a Process spawns gets a PostgreSQL store of its own data dir
// (process.cpp, route_store_to_postgres).
bool testing_on_postgres();
// In that pass, the database (of shared_postgres()) the daemons of `data_dir` use; nullopt when none
// was spawned there, and always on SQLite.
std::optional<std::string> postgres_database_of(const std::filesystem::path& data_dir);

// A child process; stdout and stderr go to files so that large output never blocks it.
class Process {
 public:
  Process(std::vector<std::string> argv, const EnvOverrides& env, const std::string& stdin_data = {});
  ~Process();  // SIGKILLs if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return m_pid; }
  bool running();
  // Waits up to `timeout`; SIGKILLs on expiry and returns nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int sig);
  std::string out() const;
  std::string err() const;

 private:
  int m_pid = -1;
  std::optional<int> m_status;
  std::filesystem::path m_dir;
};

ProcessResult run(std::vector<std::string> argv, const EnvOverrides& env = {}, const std::string& stdin_data = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `cond` until true or the deadline; returns the final value.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(20),
                std::chrono::milliseconds step = std::chrono::milliseconds(20));

std::string read_file(const std::filesystem::path& p);

struct HttpReply {
  int status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// Raw HTTP for tests: method, URL, headers, body. Content-Length is set for bodies unless
// `no_content_length`; a custom Host overrides the default.
HttpReply http_request(const std::string& method, const std::string& url,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& body = {}, bool no_content_length = false);

// One raw HTTP/1.1 exchange over a loopback socket, for requests httplib will not send (no
// Content-Length, real chunked bodies, a lying Content-Length, headers without their body).
// Reads the answer until its Content-Length is complete, the peer closes, or 10 s pass.
struct RawReply {
  int status = 0;
  std::string head;
  std::string body;
};
RawReply raw_exchange(int port, const std::string& request);

// The real daemon on port 0 in its own data dir (a path with a space), keyring=file by default.
// When it goes (destructor), the harness checks, unless the test is already failing with an exception:
// that it exited with the expected status (0 unless expect_exit() said otherwise; SIGTERM if the test
// did not stop it), and that its stderr holds no line at level "error" or "critical" except those the
// test declared (Options::expected_errors, expect_error()).
class Daemon {
 public:
  struct Options {
    std::vector<std::string> extra_args;
    EnvOverrides env;
    bool with_keyring_file = true;
    // Substrings of the error/critical log lines this daemon is expected to write.
    std::vector<std::string> expected_errors;
  };
  explicit Daemon(const std::filesystem::path& home, Options options);
  explicit Daemon(const std::filesystem::path& home) : Daemon(home, Options{}) {}
  ~Daemon();

  const std::string& url() const { return m_url; }
  int port() const { return m_port; }
  const std::filesystem::path& home() const { return m_home; }
  std::string key() const;  // the owner key from the key file
  // SIGTERM, wait, and return the exit code (and stderr for assertions). Once only: later calls return
  // the same code.
  int stop();
  std::string log() const;
  // Declares an error/critical log line (by a substring) the test provokes on purpose.
  void expect_error(std::string substring) { m_expected_errors.push_back(std::move(substring)); }
  // Declares the exit status the daemon will end with (e.g. 128 + SIGKILL when the test kills it).
  void expect_exit(int code) { m_expected_exit = code; }
  // The error/critical lines of the log that no declaration covers.
  std::vector<std::string> unexpected_error_lines() const;
  Process& process() { return *m_proc; }

  // The CLI against this daemon.
  ProcessResult cli(std::vector<std::string> args, const EnvOverrides& env = {}, const std::string& stdin_data = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // Authenticated API call with the owner key (or `key`).
  HttpReply api(const std::string& method, const std::string& path, const std::string& body = {},
                const std::optional<std::string>& key = std::nullopt) const;

 private:
  std::filesystem::path m_home;
  std::unique_ptr<Process> m_proc;
  std::string m_url;
  int m_port = 0;
  bool m_stopped = false;
  int m_exit_code = -1;
  int m_expected_exit = 0;
  std::vector<std::string> m_expected_errors;
};

// The level of one line of the daemon's log ("2026-12-06T19:31:43.123Z error ..." → "error"), or "".
std::string log_level_of(const std::string& line);
// The lines of `log` at level error or critical that contain none of `expected`.
std::vector<std::string> error_lines_except(const std::string& log, const std::vector<std::string>& expected);

}  // namespace alumia::test
