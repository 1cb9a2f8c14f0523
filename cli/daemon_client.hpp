#pragma once
// Talking to alumia-connectd: where it is (flag, env, config, state file), whether the listener
// belongs to us (OAUTH.md item 32), and the JSON envelope (SPEC §3).
#include "failure.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::cli {

using nlohmann::json;

// The daemon's control URL. Only http on a loopback literal or localhost is accepted: the CLI
// sends its key there.
struct DaemonUrl {
  std::string host;  // "127.0.0.1", "::1" or "localhost" (no brackets)
  int port = 0;
  std::string host_port() const;  // "127.0.0.1:7465", "[::1]:7465"
  std::string url() const { return "http://" + host_port(); }
};

CliResult<DaemonUrl> parse_daemon_url(std::string_view url);

// ---- /proc/net/tcp{,6} ----

struct ProcNetSocket {
  std::array<std::uint8_t, 16> address{};  // network order; IPv4 uses the first 4 bytes
  bool ipv6 = false;
  std::uint16_t port = 0;
  int state = 0;  // 0x0A = LISTEN
  uid_t uid = 0;
};

inline constexpr int k_tcp_listen = 0x0A;

// Parses the text of /proc/net/tcp (ipv6 = false) or /proc/net/tcp6 (ipv6 = true). Malformed
// lines are skipped. Addresses are printed by the kernel as host-order 32-bit words.
std::vector<ProcNetSocket> parse_proc_net_tcp(std::string_view text, bool ipv6);

// True for 127/8, ::1, 0.0.0.0, :: and their v4-mapped forms: the addresses a connection to
// 127.0.0.1 or ::1 can land on.
bool is_loopback_or_any(const ProcNetSocket& s);

struct ListenerOwnership {
  bool found = false;               // some LISTEN socket on that port can take our connection
  std::vector<uid_t> foreign_uids;  // owners of those sockets that are not `uid`
};

ListenerOwnership listener_ownership(const std::vector<ProcNetSocket>& sockets, std::uint16_t port, uid_t uid);

// ---- the envelope ----

// Exit code for an error envelope: the code's exit code from the shared table; an unknown code
// falls back to the HTTP status (405 → 7), anything else 1.
int exit_code_for_error(int http_status, std::string_view wire);

// Turns an HTTP answer into the envelope's data or a Failure. The envelope's "warnings" (SPEC §3: strings
// next to "data"), terminal-safe, are appended to `warnings` when given; anything else there is ignored.
CliResult<json> parse_envelope(int http_status, std::string_view body, const std::string& where,
                               std::vector<std::string>* warnings = nullptr);

// The "how to start it" message (SPEC §10).
std::string unreachable_message(const DaemonUrl& url);

class DaemonClient {
 public:
  // `on_warning` is told each warning a reply carries (the CLI prints it on stderr, --json or not).
  DaemonClient(DaemonUrl url, std::string key, std::string key_source,
               std::function<void(const std::string&)> on_warning = {});
  ~DaemonClient();
  DaemonClient(const DaemonClient&) = delete;
  DaemonClient& operator=(const DaemonClient&) = delete;

  CliResult<json> get(const std::string& path);
  CliResult<json> post(const std::string& path, const json& body = json::object());
  CliResult<json> patch(const std::string& path, const json& body);
  CliResult<json> del(const std::string& path);
  // For bodies holding secrets: the caller builds the string and wipes it.
  CliResult<json> post_raw(const std::string& path, const std::string& body);
  const DaemonUrl& url() const { return m_url; }
  // Caps connect, read and write of every later request (shell completion: a hung daemon must not
  // hang the shell).
  void set_timeout(std::chrono::milliseconds t) { m_timeout = t; }

 private:
  CliResult<json> send(const std::string& method, const std::string& path, const std::string* body);
  DaemonUrl m_url;
  std::string m_key;
  std::string m_key_source;
  std::function<void(const std::string&)> m_on_warning;
  std::optional<std::chrono::milliseconds> m_timeout;
};

// Checks the listener on url.port (OAUTH.md item 32). Reads /proc/net/tcp and /proc/net/tcp6.
CliStatus check_listener_owner(const DaemonUrl& url);

// Whether anything answers HTTP at url (no key is sent). Used by `daemon start`.
bool daemon_answers(const DaemonUrl& url, std::chrono::milliseconds timeout);

// Percent-encodes a path segment or query value.
std::string encode_component(std::string_view s);

// Every item of a list route (SPEC §3 paging), following nextCursor 200 items at a time for at most
// `max_pages` pages: a JSON array.
CliResult<json> fetch_all(DaemonClient& client, const std::string& base, int max_pages = 100);

// `path` plus "?k=v&..." for the parameters whose value is not empty, values percent-encoded.
std::string with_query(const std::string& path, const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace alumia::cli
