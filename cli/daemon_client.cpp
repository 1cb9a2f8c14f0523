#include "daemon_client.hpp"

#include "output.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>
#include <alumia/net/host_port.hpp>
#include <alumia/net/http.hpp>

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace alumia::cli {
namespace {

constexpr time_t k_connect_timeout_s = 3;
constexpr time_t k_read_timeout_s = 60;  // token reads may refresh at the provider first

bool parse_hex_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty() || s.size() > 8) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc{} && p == s.data() + s.size();
}

// The kernel prints each 32-bit word of the address with %08X of its in-memory value, so
// copying the parsed value back into memory restores network byte order.
bool parse_address(std::string_view hex, bool ipv6, std::array<std::uint8_t, 16>& out) {
  const std::size_t words = ipv6 ? 4 : 1;
  if (hex.size() != words * 8) return false;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint32_t w = 0;
    if (!parse_hex_u32(hex.substr(i * 8, 8), w)) return false;
    std::memcpy(out.data() + i * 4, &w, 4);
  }
  return true;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string read_text(const char* path, bool& ok) {
  std::ifstream in(path);
  ok = static_cast<bool>(in);
  std::stringstream buf;
  if (ok) buf << in.rdbuf();
  return buf.str();
}

bool is_bad_path_char(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

std::string DaemonUrl::host_port() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

CliResult<DaemonUrl> parse_daemon_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return usage_fail("invalid daemon URL '" + std::string(url) + "': " + std::string(why) +
                      " (expected http://127.0.0.1:PORT)");
  };
  constexpr std::string_view k_scheme = "http://";
  if (!url.starts_with(k_scheme)) return bad("only http:// on a loopback address is supported");
  std::string_view rest = url.substr(k_scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos || rest.find('@') != std::string_view::npos ||
      rest.find('?') != std::string_view::npos)
    return bad("no path, query or user part is allowed");
  auto hp = net::parse_host_port(rest, "the daemon address", 1);
  if (!hp) return bad(hp.error().message);
  DaemonUrl out;
  out.host = std::move(hp->host);
  out.port = hp->port;
  const bool loopback = out.host == "localhost" || out.host == "::1" || out.host.starts_with("127.");
  if (!loopback) return bad("the daemon must be on a loopback address");
  if (out.host.starts_with("127.")) {
    for (char c : out.host)
      if (c != '.' && (c < '0' || c > '9')) return bad("bad IPv4 literal");
  }
  return out;
}

std::vector<ProcNetSocket> parse_proc_net_tcp(std::string_view text, bool ipv6) {
  std::vector<ProcNetSocket> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const auto line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const auto f = split_ws(line);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
    if (f.size() < 8 || !f[0].ends_with(":")) continue;
    const auto colon = f[1].find(':');
    if (colon == std::string_view::npos) continue;
    ProcNetSocket s;
    s.ipv6 = ipv6;
    std::uint32_t port = 0;
    std::uint32_t state = 0;
    if (!parse_address(f[1].substr(0, colon), ipv6, s.address)) continue;
    if (!parse_hex_u32(f[1].substr(colon + 1), port) || port > 0xFFFF) continue;
    if (!parse_hex_u32(f[3], state)) continue;
    unsigned long uid = 0;
    auto [p, ec] = std::from_chars(f[7].data(), f[7].data() + f[7].size(), uid);
    if (ec != std::errc{} || p != f[7].data() + f[7].size()) continue;
    s.port = static_cast<std::uint16_t>(port);
    s.state = static_cast<int>(state);
    s.uid = static_cast<uid_t>(uid);
    out.push_back(s);
  }
  return out;
}

bool is_loopback_or_any(const ProcNetSocket& s) {
  const auto& a = s.address;
  const auto v4 = [](const std::uint8_t* b) {
    return b[0] == 127 || (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
  };
  if (!s.ipv6) return v4(a.data());
  const bool first10_zero = std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; });
  if (!first10_zero) return false;
  if (a[10] == 0xFF && a[11] == 0xFF) return v4(a.data() + 12);  // ::ffff:a.b.c.d
  if (a[10] != 0 || a[11] != 0 || a[12] != 0 || a[13] != 0 || a[14] != 0) return false;
  return a[15] == 0 || a[15] == 1;  // :: or ::1
}

ListenerOwnership listener_ownership(const std::vector<ProcNetSocket>& sockets, std::uint16_t port, uid_t uid) {
  ListenerOwnership out;
  for (const auto& s : sockets) {
    if (s.state != k_tcp_listen || s.port != port || !is_loopback_or_any(s)) continue;
    out.found = true;
    if (s.uid != uid && std::find(out.foreign_uids.begin(), out.foreign_uids.end(), s.uid) == out.foreign_uids.end())
      out.foreign_uids.push_back(s.uid);
  }
  return out;
}

std::string unreachable_message(const DaemonUrl& url) {
  return "cannot reach alumia-connectd at " + url.host_port() +
         " \u2014 start it with `alumia-connect daemon start` or `systemctl --user start alumia-connectd`";
}

CliStatus check_listener_owner(const DaemonUrl& url) {
  bool ok4 = false;
  bool ok6 = false;
  const auto t4 = read_text("/proc/net/tcp", ok4);
  const auto t6 = read_text("/proc/net/tcp6", ok6);
  if (!ok4 && !ok6)
    return cli_fail(k_exit_unreachable, "cannot verify who listens on " + url.host_port() +
                                            ": /proc/net/tcp is not readable; refusing to send the API key");
  auto sockets = parse_proc_net_tcp(t4, false);
  auto s6 = parse_proc_net_tcp(t6, true);
  sockets.insert(sockets.end(), s6.begin(), s6.end());
  const uid_t me = ::geteuid();
  const auto own = listener_ownership(sockets, static_cast<std::uint16_t>(url.port), me);
  if (!own.found) return cli_fail(k_exit_unreachable, unreachable_message(url));
  if (!own.foreign_uids.empty())
    return cli_fail(k_exit_unreachable,
                    "the listener on " + url.host_port() + " belongs to uid " +
                        std::to_string(own.foreign_uids.front()) + ", not to you (uid " + std::to_string(me) +
                        "); refusing to send the API key to it. Stop that process or run alumia-connectd on another "
                        "port (--listen) and point the CLI at it with --daemon or ALUMIA_DAEMON");
  return {};
}

int exit_code_for_error(int http_status, std::string_view wire) {
  const auto code = error_code_from_wire(wire);
  if (code != ErrorCode::internal || wire == "INTERNAL") return error_info(code).exit_code;
  if (http_status == 405) return error_info(ErrorCode::method_not_allowed).exit_code;
  for (auto c : {ErrorCode::bad_request, ErrorCode::unauthorized, ErrorCode::forbidden, ErrorCode::not_found,
                 ErrorCode::conflict, ErrorCode::length_required, ErrorCode::payload_too_large,
                 ErrorCode::request_timeout, ErrorCode::headers_too_large, ErrorCode::validation_error,
                 ErrorCode::too_many_requests, ErrorCode::service_unavailable})
    if (error_info(c).http_status == http_status) return error_info(c).exit_code;
  return k_exit_error;
}

CliResult<json> parse_envelope(int http_status, std::string_view body, const std::string& where,
                               std::vector<std::string>* warnings) {
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("success") || !j["success"].is_boolean()) {
    return cli_fail(exit_code_for_error(http_status, ""),
                    "unexpected answer from " + where + " (HTTP " + std::to_string(http_status) +
                        ", not an alumia envelope); is --daemon pointing at alumia-connectd?");
  }
  if (warnings != nullptr && j.contains("warnings") && j["warnings"].is_array())
    for (const auto& w : j["warnings"])
      if (w.is_string()) warnings->push_back(terminal_safe(w.get<std::string>()));
  if (j["success"].get<bool>()) {
    if (!j.contains("data")) return json(nullptr);
    return std::move(j["data"]);
  }
  std::string wire;
  std::string message = "request failed (HTTP " + std::to_string(http_status) + ")";
  if (j.contains("error") && j["error"].is_object()) {
    const auto& e = j["error"];
    if (e.contains("code") && e["code"].is_string()) wire = e["code"].get<std::string>();
    // The daemon's text, printed on stderr: one line, no control characters from it.
    if (e.contains("message") && e["message"].is_string()) message = terminal_safe(e["message"].get<std::string>());
  }
  return cli_fail(exit_code_for_error(http_status, wire), message);
}

DaemonClient::DaemonClient(DaemonUrl url, std::string key, std::string key_source,
                           std::function<void(const std::string&)> on_warning)
    : m_url(std::move(url)),
      m_key(std::move(key)),
      m_key_source(std::move(key_source)),
      m_on_warning(std::move(on_warning)) {}

DaemonClient::~DaemonClient() { wipe_string(m_key); }

CliResult<json> DaemonClient::get(const std::string& path) { return send("GET", path, nullptr); }
CliResult<json> DaemonClient::del(const std::string& path) { return send("DELETE", path, nullptr); }
CliResult<json> DaemonClient::post(const std::string& path, const json& body) {
  const std::string text = body.dump();
  return send("POST", path, &text);
}
CliResult<json> DaemonClient::patch(const std::string& path, const json& body) {
  const std::string text = body.dump();
  return send("PATCH", path, &text);
}
CliResult<json> DaemonClient::post_raw(const std::string& path, const std::string& body) {
  return send("POST", path, &body);
}

CliResult<json> DaemonClient::send(const std::string& method, const std::string& path, const std::string* body) {
  if (std::any_of(path.begin(), path.end(), [](char c) { return is_bad_path_char(static_cast<unsigned char>(c)); }))
    return usage_fail("invalid characters in request path");
  httplib::Client client(m_url.host, m_url.port);
  client.set_connection_timeout(k_connect_timeout_s);
  client.set_read_timeout(k_read_timeout_s);
  client.set_write_timeout(k_read_timeout_s);
  if (m_timeout) {
    client.set_connection_timeout(*m_timeout);
    client.set_read_timeout(*m_timeout);
    client.set_write_timeout(*m_timeout);
  }
  client.set_follow_location(false);
  std::string auth = "Bearer " + m_key;
  httplib::Headers headers{{"Authorization", auth},
                           {"Accept", "application/json"},
                           {"Host", m_url.host_port()},
                           {"User-Agent", std::string("alumia-connect/") + ALUMIA_VERSION}};
  wipe_string(auth);
  httplib::Result res = method == "GET"      ? client.Get(path.c_str(), headers)
                        : method == "DELETE" ? client.Delete(path.c_str(), headers)
                        : method == "PATCH"  ? client.Patch(path.c_str(), headers, *body, "application/json")
                                             : client.Post(path.c_str(), headers, *body, "application/json");
  for (auto& [name, value] : headers)
    if (name == "Authorization") wipe_string(value);
  if (!res) {
    const auto err = res.error();
    if (err == httplib::Error::Connection || err == httplib::Error::ConnectionTimeout)
      return cli_fail(k_exit_unreachable, unreachable_message(m_url));
    return cli_fail(k_exit_error, "alumia-connectd at " + m_url.host_port() + " did not answer " + method + " " + path +
                                      ": " + httplib::to_string(err));
  }
  std::vector<std::string> warnings;
  auto data = parse_envelope(res->status, res->body, "alumia-connectd at " + m_url.host_port(), &warnings);
  if (m_on_warning)
    for (const auto& w : warnings) m_on_warning(w);
  if (!data && (res->status == 401)) data.error().message += " (API key from " + m_key_source + ")";
  return data;
}

bool daemon_answers(const DaemonUrl& url, std::chrono::milliseconds timeout) {
  httplib::Client client(url.host, url.port);
  const auto secs = static_cast<time_t>(timeout.count() / 1000);
  const auto usecs = static_cast<time_t>((timeout.count() % 1000) * 1000);
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  httplib::Headers headers{{"Host", url.host_port()}, {"Accept", "application/json"}};
  auto res = client.Get("/api/v1/status", headers);
  return static_cast<bool>(res);
}

std::string encode_component(std::string_view s) { return http::url_encode(s); }

std::string with_query(const std::string& path, const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out = path;
  char sep = path.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out += sep + k + "=" + encode_component(v);
    sep = '&';
  }
  return out;
}

CliResult<json> fetch_all(DaemonClient& client, const std::string& base, int max_pages) {
  json items = json::array();
  std::string cursor;
  for (int page = 0; page < max_pages; ++page) {
    std::string path = base + (base.find('?') == std::string::npos ? "?" : "&") + "limit=200";
    if (!cursor.empty()) path += "&cursor=" + encode_component(cursor);
    auto data = TRY(client.get(path));
    if (data.is_object() && data.contains("items") && data["items"].is_array())
      for (auto& it : data["items"]) items.push_back(std::move(it));
    cursor = jstr(data, "nextCursor");
    if (!jbool(data, "hasMore") || cursor.empty()) break;
  }
  return items;
}

}  // namespace alumia::cli
