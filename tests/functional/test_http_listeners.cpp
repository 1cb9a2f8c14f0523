// The two listeners on libmicrohttpd (issue 13 items 1 and 2), driven over raw sockets: every request
// smuggling pattern is refused and closed on both listeners, and the request hidden in its body is
// never served; the header deadline and the body floor answer 408 and close; idle keep-alive closes;
// the per-address and total caps refuse the excess without disturbing the others; the control API
// answers while the public listener holds many trickling connections; X-Forwarded-For counts only from
// a configured trusted proxy.
#include "cli_helpers.hpp"
#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

using namespace alumia::test;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// One client connection from a chosen loopback source address (127.0.0.0/8 offers many).
class Conn {
 public:
  explicit Conn(int port, const char* source = "127.0.0.1") {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
  }
  ~Conn() {
    if (m_fd >= 0) ::close(m_fd);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(m_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Reads until the peer closes (true) or the deadline passes (false); what came is in data().
  bool read_until_close(std::chrono::milliseconds within = 5s) {
    const auto deadline = Clock::now() + within;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
      if (n <= 0) return true;  // closed (or reset)
      m_data.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Reads one whole answer (head and Content-Length body); its status, or 0 when the peer closed first
  // or nothing came in time.
  int read_answer(std::chrono::milliseconds within = 5s) {
    const auto deadline = Clock::now() + within;
    for (;;) {
      const auto end = m_data.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::smatch m;
        const std::string head = m_data.substr(0, end);
        static const std::regex k_cl("[Cc]ontent-[Ll]ength: *([0-9]+)");
        const std::size_t need = end + 4 + (std::regex_search(head, m, k_cl) ? std::stoul(m[1].str()) : 0);
        if (m_data.size() >= need) {
          m_last = m_data.substr(0, need);
          m_data.erase(0, need);
          return m_last.rfind("HTTP/1.", 0) == 0 ? std::stoi(m_last.substr(9, 3)) : 0;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return 0;
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
      if (n <= 0) return 0;
      m_data.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Whether the peer closed the connection within `within` without sending anything more.
  bool closed_by_peer(std::chrono::milliseconds within = 5s) { return read_until_close(within) && m_data.empty(); }
  const std::string& data() const { return m_data; }
  const std::string& last() const { return m_last; }

 private:
  int m_fd = -1;
  std::string m_data;
  std::string m_last;
};

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// The daemon with both listeners and the given listener settings (env).
struct Listeners {
  TempDir dir;
  Daemon d;
  int control = 0;
  int public_ = 0;
  explicit Listeners(EnvOverrides env = {}) : d(dir.path(), with_public(daemon_options(std::move(env)))) {
    auto st = d.api("GET", "/api/v1/status");
    REQUIRE(st.status == 200);
    control = d.port();
    public_ = port_of(st.json()["data"]["publicUrl"]);
  }
  static Daemon::Options with_public(Daemon::Options o) {
    o.extra_args = {"--public-listen", "127.0.0.1:0"};
    return o;
  }
};

std::string get(const std::string& path, int port, const std::string& extra = {}) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + extra + "\r\n";
}

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("listeners: every smuggling pattern is refused and closed; the hidden request is never served",
          "[http][listeners]") {
  Listeners l;
  for (const int port : {l.control, l.public_}) {
    const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
    // The request hidden in a body: it would answer 404 naming its path.
    const std::string smuggled = "GET /smuggled-probe HTTP/1.1\r\n" + host + "\r\n";
    const std::string n = std::to_string(smuggled.size());
    const std::string n5 = std::to_string(5 + smuggled.size());
    const std::string post = "POST /api/v1/connections HTTP/1.1\r\n";
    struct Pattern {
      const char* name;
      std::string bytes;
    };
    std::string many_lines, huge;
    for (int i = 0; i < 150; ++i) many_lines += "X-Pad-" + std::to_string(i) + ": v\r\n";
    for (int i = 0; i < 40; ++i) huge += "X-Huge-" + std::to_string(i) + ": " + std::string(500, 'a') + "\r\n";
    const std::vector<Pattern> patterns{
        {"two Content-Lengths, small first",
         post + host + "Content-Length: 5\r\nContent-Length: " + n5 + "\r\n\r\nhello" + smuggled},
        {"two Content-Lengths, large first",
         post + host + "Content-Length: " + n5 + "\r\nContent-Length: 5\r\n\r\nhello" + smuggled},
        {"two equal Content-Lengths",
         post + host + "Content-Length: " + n + "\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"Content-Length then Transfer-Encoding", post + host +
                                                      "Content-Length: " + std::to_string(5 + smuggled.size()) +
                                                      "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
        {"Transfer-Encoding then Content-Length",
         post + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled},
        {"Transfer-Encoding chunked alone", post + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
        {"Transfer-Encoding gzip, chunked",
         post + host + "Content-Length: " + n + "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + smuggled},
        {"Transfer-Encoding xchunked",
         post + host + "Content-Length: " + n + "\r\nTransfer-Encoding: xchunked\r\n\r\n" + smuggled},
        {"GET with a body", "GET /healthz HTTP/1.1\r\n" + host + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"HEAD with a body", "HEAD /healthz HTTP/1.1\r\n" + host + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"DELETE with a body",
         "DELETE /api/v1/keys/x HTTP/1.1\r\n" + host + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"POST without Content-Length", post + host + "\r\n" + smuggled},
        {"Content-Length +N", post + host + "Content-Length: +" + n + "\r\n\r\n" + smuggled},
        {"Content-Length 5x", post + host + "Content-Length: 5x\r\n\r\nhello" + smuggled},
        {"Content-Length -1", post + host + "Content-Length: -1\r\n\r\n" + smuggled},
        {"Content-Length list", post + host + "Content-Length: " + n + ", " + n + "\r\n\r\n" + smuggled},
        {"space before the colon", post + host + "Content-Length : " + n + "\r\n\r\n" + smuggled},
        {"over the body cap", post + host + "Content-Length: 10000000\r\n\r\n" + smuggled},
        {"no Host", post + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"two Hosts", post + host + host + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"a foreign Host", post + "Host: evil.example\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"a foreign Origin",
         post + host + "Origin: https://evil.example\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"150 header lines", post + host + many_lines + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"20 KiB of headers", post + host + huge + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        // Line ends a strict proxy would not read as we would (issue 13 item 2): refused, not joined.
        {"a bare LF ending the request line",
         "POST /api/v1/connections HTTP/1.1\n" + host + "Content-Length: " + n + "\r\n\r\n" + smuggled},
        {"a bare LF ending a header line",
         post + "Host: 127.0.0.1:" + std::to_string(port) + "\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"bare LFs throughout", "POST /api/v1/connections HTTP/1.1\nHost: 127.0.0.1:" + std::to_string(port) +
                                    "\nContent-Length: " + n + "\n\n" + smuggled},
        {"an obs-fold line", post + host + "X-Folded: a\r\n b\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"an obs-fold line with a tab",
         post + host + "X-Folded: a\r\n\tb\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
        {"Content-Length folded", post + host + "Content-Length: " + n + "\r\n 0\r\n\r\n" + smuggled},
        {"a bare CR inside a header",
         post + host + "X-Cr: a\rContent-Length: 0\r\nContent-Length: " + n + "\r\n\r\n" + smuggled},
    };
    for (const auto& p : patterns) {
      CAPTURE(port == l.control ? "control" : "public", p.name);
      Conn c(port);
      REQUIRE(c.send(p.bytes));
      CHECK(c.read_until_close());  // every refusal closes
      const std::string& got = c.data();
      CAPTURE(got);
      CHECK(got.find("smuggled-probe") == std::string::npos);
      CHECK(count_of(got, " 404 ") == 0);
      const int status = got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
      CHECK((status == 400 || status == 403 || status == 411 || status == 413 || status == 431));
    }
  }
  // The listeners still serve after all that.
  for (const int port : {l.control, l.public_}) {
    Conn c(port);
    REQUIRE(c.send(get("/healthz", port)));
    CHECK(c.read_answer() == 200);
  }
}

TEST_CASE("listeners: our own refusals are in the envelope, with Connection: close", "[http][listeners]") {
  Listeners l;
  const std::string host = "Host: 127.0.0.1:" + std::to_string(l.public_) + "\r\n";
  struct Row {
    std::string bytes;
    int status;
    const char* code;
  };
  std::string many_lines;
  for (int i = 0; i < 150; ++i) many_lines += "X-Pad-" + std::to_string(i) + ": v\r\n";
  const std::vector<Row> rows{
      {"POST /x HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "BAD_REQUEST"},
      {"POST /x HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "LENGTH_REQUIRED"},
      {"POST /x HTTP/1.1\r\n" + host + "\r\n", 411, "LENGTH_REQUIRED"},
      {"GET /healthz HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc", 400, "BAD_REQUEST"},
      {"GET /healthz HTTP/1.1\r\n" + host + many_lines + "\r\n", 431, "HEADERS_TOO_LARGE"},
      {"POST /x HTTP/1.1\r\n" + host + "Content-Length: 10000000\r\n\r\n", 413, "PAYLOAD_TOO_LARGE"},
      {"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403, "FORBIDDEN"},
      {"GET /healthz HTTP/1.1\r\n\r\n", 400, "BAD_REQUEST"},  // no Host: ours, not MHD's (one status line)
      {"GET /healthz HTTP/1.1\n" + host + "\r\n", 400, "BAD_REQUEST"},
      {"GET /health z HTTP/1.1\r\n" + host + "\r\n", 400, "BAD_REQUEST"},  // a space in the target
      {"GET /healthz HTTP/1.1\r\n" + host + "X-Folded: a\r\n b\r\n\r\n", 400, "BAD_REQUEST"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.bytes.substr(0, 60));
    Conn c(l.public_);
    REQUIRE(c.send(r.bytes));
    REQUIRE(c.read_answer() == r.status);
    CHECK(count_of(c.last(), "HTTP/1.1 ") == 1);
    CHECK(c.last().find("Connection: close") != std::string::npos);
    const auto body = nlohmann::json::parse(c.last().substr(c.last().find("\r\n\r\n") + 4), nullptr, false);
    CHECK(body["error"]["code"] == r.code);
    CHECK(c.read_until_close());
  }
  // GET with "Content-Length: 0" says no body, as none does; keep-alive goes on.
  Conn c(l.public_);
  REQUIRE(c.send("GET /healthz HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n" + get("/healthz", l.public_)));
  CHECK(c.read_answer() == 200);
  CHECK(c.read_answer() == 200);
  // The line-end rule refuses nothing well formed: empty values, trailing blanks, tabs inside a value,
  // a header as the last line, many headers, on one kept-alive connection.
  std::string many;
  for (int i = 0; i < 60; ++i) many += "X-N" + std::to_string(i) + ": " + std::string(i % 7, ' ') + "v\t w \r\n";
  for (const std::string& extra : {std::string("X-Empty:\r\n"), std::string("X-Trailing: v   \r\n"),
                                   std::string("X-Tab:\tv\tw\r\n"), std::string("X-Blank: \r\nX-Next: 1\r\n"), many}) {
    CAPTURE(extra.substr(0, 40));
    REQUIRE(c.send(get("/healthz", l.public_, extra)));
    CHECK(c.read_answer() == 200);
  }
}

TEST_CASE("listeners: headers not complete in time are answered 408 and closed, a trickle too",
          "[http][listeners][deadline]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_HEADER_TIMEOUT_MS", "300"}});
  for (const int port : {l.control, l.public_}) {
    Conn c(port);
    const auto start = Clock::now();
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\n"));
    // One header line every 50 ms: bytes keep coming, so only the deadline ends it.
    int status = 0;
    for (int i = 0; i < 100 && status == 0; ++i) {
      if (!c.send("X-Trickle-" + std::to_string(i) + ": 1\r\n")) break;
      status = c.read_answer(50ms);
    }
    if (status == 0) status = c.read_answer(2s);
    const auto took = Clock::now() - start;
    CHECK(status == 408);
    CHECK(c.last().find("REQUEST_TIMEOUT") != std::string::npos);
    CHECK(took >= 250ms);
    CHECK(took < 3s);
    CHECK(c.read_until_close(2s));
  }
}

TEST_CASE("listeners: on a keep-alive connection the header deadline counts from the next request's first byte",
          "[http][listeners][deadline]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_HEADER_TIMEOUT_MS", "300"}, {"ALUMIA_HTTP_IDLE_TIMEOUT_SECONDS", "5"}});
  for (const int port : {l.control, l.public_}) {
    Conn c(port);
    REQUIRE(c.send(get("/healthz", port)));
    REQUIRE(c.read_answer() == 200);
    // Idle for longer than the header timeout: only the idle timeout applies, so it stays open ...
    CHECK_FALSE(c.read_until_close(700ms));
    // ... and the next request, sent whole, is served.
    REQUIRE(c.send(get("/healthz", port)));
    REQUIRE(c.read_answer() == 200);
    // Idle again, then a head trickled in a byte at a time (its request line too, so that MHD has not
    // begun a request yet): the deadline runs from its first byte, not from the previous answer.
    CHECK_FALSE(c.read_until_close(700ms));
    std::string head = "GET /healthz HTTP/1.1\r\n";
    for (int i = 0; i < 20; ++i) head += "X-Trickle-" + std::to_string(i) + ": 1\r\n";
    const auto start = Clock::now();
    int status = 0;
    for (std::size_t i = 0; i < head.size() && status == 0; ++i) {
      if (!c.send(head.substr(i, 1))) break;
      status = c.read_answer(50ms);
    }
    if (status == 0) status = c.read_answer(2s);
    const auto took = Clock::now() - start;
    CHECK(status == 408);
    CHECK(took >= 250ms);
    CHECK(took < 3s);
    CHECK(c.read_until_close(2s));
  }
}

TEST_CASE("listeners: a body slower than the floor rate is answered 408 and closed", "[http][listeners][deadline]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_HEADER_TIMEOUT_MS", "300"}, {"ALUMIA_HTTP_BODY_MIN_RATE", "1000"}});
  Conn c(l.public_);
  const auto start = Clock::now();
  REQUIRE(c.send("POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(l.public_) +
                 "\r\nContent-Length: 100000\r\n\r\n0123456789"));
  CHECK(c.read_answer(3s) == 408);
  CHECK(Clock::now() - start >= 250ms);
  CHECK(c.read_until_close(2s));
  // A body at a fair rate is read and answered (404: no such route).
  Conn fair(l.public_);
  REQUIRE(fair.send("POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(l.public_) +
                    "\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'x')));
  CHECK(fair.read_answer() == 404);
}

TEST_CASE("listeners: an idle keep-alive connection is closed after the idle timeout", "[http][listeners]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_IDLE_TIMEOUT_SECONDS", "1"}});
  Conn c(l.public_);
  REQUIRE(c.send(get("/healthz", l.public_)));
  REQUIRE(c.read_answer() == 200);
  const auto start = Clock::now();
  CHECK(c.closed_by_peer(5s));  // silently: no 408 for a connection that asked nothing
  CHECK(Clock::now() - start >= 900ms);
}

TEST_CASE("listeners: the per-address cap closes the excess; others are undisturbed", "[http][listeners][caps]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP", "3"}});
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Conn>(l.public_, "127.0.0.7"));
    REQUIRE(held.back()->send(get("/healthz", l.public_)));
    REQUIRE(held.back()->read_answer() == 200);
  }
  Conn over(l.public_, "127.0.0.7");
  over.send(get("/healthz", l.public_));
  CHECK(over.closed_by_peer());
  Conn other(l.public_, "127.0.0.8");
  REQUIRE(other.send(get("/healthz", l.public_)));
  CHECK(other.read_answer() == 200);
  for (auto& c : held) {
    REQUIRE(c->send(get("/healthz", l.public_)));
    CHECK(c->read_answer() == 200);
  }
  held.pop_back();  // one closes: its place is free again
  CHECK(eventually(
      [&] {
        Conn again(l.public_, "127.0.0.7");
        return again.send(get("/healthz", l.public_)) && again.read_answer(1s) == 200;
      },
      5s));
}

TEST_CASE("listeners: the total cap closes the excess; others are undisturbed", "[http][listeners][caps]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_MAX_CONNECTIONS", "4"}});
  std::vector<std::unique_ptr<Conn>> held;
  for (const char* source : {"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"}) {
    held.push_back(std::make_unique<Conn>(l.public_, source));
    REQUIRE(held.back()->send(get("/healthz", l.public_)));
    REQUIRE(held.back()->read_answer() == 200);
  }
  Conn over(l.public_, "127.0.1.5");
  over.send(get("/healthz", l.public_));
  CHECK(over.closed_by_peer());
  for (auto& c : held) {
    REQUIRE(c->send(get("/healthz", l.public_)));
    CHECK(c->read_answer() == 200);
  }
  // The control listener has its own cap: the API answers.
  CHECK(l.d.api("GET", "/api/v1/status").status == 200);
}

TEST_CASE("listeners: the control API answers while the public listener holds many trickling connections",
          "[http][listeners]") {
  Listeners l;
  std::vector<std::unique_ptr<Conn>> trickle;
  for (int i = 0; i < 400; ++i) {
    const std::string source = "127.0.2." + std::to_string(1 + i % 200);
    trickle.push_back(std::make_unique<Conn>(l.public_, source.c_str()));
    REQUIRE(trickle.back()->send("POST /api/v1/connectors/webhooks/github/x HTTP/1.1\r\nX-A: 1\r\n"));
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& c : trickle) c->send("X-B: 2\r\n");
    const auto start = Clock::now();
    CHECK(l.d.api("GET", "/api/v1/status").status == 200);
    CHECK(Clock::now() - start < 2s);  // cpp-httplib stalled it for as long as the trickle lasted
    Conn pub(l.public_, "127.0.3.1");
    REQUIRE(pub.send(get("/healthz", l.public_)));
    CHECK(pub.read_answer(1s) == 200);
  }
}

TEST_CASE("listeners: X-Forwarded-For counts only from a configured trusted proxy", "[http][listeners][proxy]") {
  // A request in flight from a client: a POST whose body has not come yet.
  const auto hold = [](int port, const std::string& forwarded_for) {
    auto c = std::make_unique<Conn>(port);
    REQUIRE(c->send("POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nX-Forwarded-For: " + forwarded_for + "\r\nContent-Length: 10\r\n\r\n"));
    return c;
  };
  const auto ask = [](int port, const std::string& forwarded_for) {
    Conn c(port);
    c.send(get("/healthz", port, "X-Forwarded-For: " + forwarded_for + "\r\n"));
    return c.read_answer(2s);  // 0: closed unanswered
  };
  SECTION("trusted: each forwarded client has its own limit; the proxy's own address has none") {
    Listeners l(EnvOverrides{{"ALUMIA_TRUSTED_PROXIES", "127.0.0.1"}, {"ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP", "1"}});
    auto held = hold(l.public_, "203.0.113.9");
    // Wait until the held request is in flight (its head judged), then the same client is over.
    CHECK(eventually([&] { return ask(l.public_, "203.0.113.9") == 503; }, 5s));
    CHECK(ask(l.public_, "203.0.113.10") == 200);           // another client, same proxy connection source
    CHECK(ask(l.public_, "6.6.6.6, 203.0.113.10") == 200);  // a forged prefix is not the client
    CHECK(ask(l.public_, "6.6.6.6, 203.0.113.9") == 503);
    held.reset();
    CHECK(eventually([&] { return ask(l.public_, "203.0.113.9") == 200; }, 5s));
  }
  SECTION("not configured: the header is ignored and the per-address connection cap holds") {
    Listeners l(EnvOverrides{{"ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP", "1"}});
    auto held = hold(l.public_, "203.0.113.9");
    CHECK(ask(l.public_, "203.0.113.10") == 0);
  }
  SECTION("another address trusted: the header from this one is ignored") {
    Listeners l(
        EnvOverrides{{"ALUMIA_TRUSTED_PROXIES", "127.0.0.2, 10.0.0.0/8"}, {"ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP", "1"}});
    auto held = hold(l.public_, "203.0.113.9");
    CHECK(ask(l.public_, "203.0.113.10") == 0);
  }
}

TEST_CASE("listeners: a trusted-proxies value that is not an address stops the start naming it",
          "[http][listeners][proxy]") {
  TempDir dir;
  auto o = daemon_options({{"ALUMIA_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example"}});
  const auto r = run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0", "--data-dir",
                      dir.path().string(), "--keyring", "file"},
                     o.env, {}, 30s);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("trusted-proxies") && Catch::Contains("proxy.example"));
}

TEST_CASE("listeners: a delivery over its endpoint's rate limit is refused before its body is sent",
          "[http][listeners][rate]") {
  Listeners l;
  auto created =
      l.d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","rateLimit":{"perSecond":1,"burst":1}})");
  REQUIRE(created.status == 201);
  const std::string id = created.json()["data"]["endpoint"]["id"];
  const std::string head = "POST /api/v1/connectors/webhooks/github/" + id +
                           " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(l.public_) +
                           "\r\nContent-Length: 2000\r\n\r\n";
  // The first takes the one token (its unsigned body then fails verification: 401). The second, sent
  // behind it on the same connection in one write (the bucket refills a token a second: only the daemon's
  // own work lies between the two), gets 429 on its head alone, and the connection closes: its body is
  // never waited for.
  Conn c(l.public_);
  REQUIRE(c.send(head + std::string(2000, 'x') + head));
  CHECK(c.read_answer() == 401);
  CHECK(c.read_answer() == 429);
  CHECK(c.last().find("Retry-After: 1") != std::string::npos);
  CHECK(c.last().find("Connection: close") != std::string::npos);
  CHECK(c.read_until_close(2s));
}

TEST_CASE("listeners: bodies over the listener's body budget are refused before they are read; the budget frees",
          "[http][listeners][budget]") {
  Listeners l(EnvOverrides{{"ALUMIA_HTTP_BODY_BUDGET", "65536"}});
  auto created = l.d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github"})");
  REQUIRE(created.status == 201);
  const std::string id = created.json()["data"]["endpoint"]["id"];
  const auto head = [&](std::size_t length) {
    return "POST /api/v1/connectors/webhooks/github/" + id +
           " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(l.public_) +
           "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
  };
  // Two heads whose bodies do not fit in the 65,536 together (40,000 + 30,000), neither body sent: whichever
  // is judged first reserves its length and waits for its body; the other is refused on its head alone,
  // 503 with Retry-After, and closed.
  Conn first(l.public_);
  Conn second(l.public_);
  REQUIRE(first.send(head(40000)));
  REQUIRE(second.send(head(30000)));
  int first_status = 0, second_status = 0;
  CHECK(eventually(
      [&] {
        if (first_status == 0) first_status = first.read_answer(20ms);
        if (second_status == 0) second_status = second.read_answer(20ms);
        return first_status != 0 || second_status != 0;
      },
      5s));
  const bool first_refused = first_status == 503;
  REQUIRE((first_refused ? first_status : second_status) == 503);
  Conn& refused = first_refused ? first : second;
  Conn& held = first_refused ? second : first;
  const std::size_t held_length = first_refused ? 30000 : 40000;
  CHECK(refused.last().find("Connection: close") != std::string::npos);
  CHECK(refused.last().find("Retry-After: 1") != std::string::npos);
  CHECK(refused.read_until_close(2s));
  // A smaller body still fits beside the held one (its unsigned body then fails verification: 401).
  Conn small(l.public_);
  REQUIRE(small.send(head(1000) + std::string(1000, 'x')));
  CHECK(small.read_answer() == 401);
  // The held body arrives and is answered; its share is given back, and a large one fits again.
  REQUIRE(held.send(std::string(held_length, 'x')));
  CHECK(held.read_answer() == 401);
  // The share comes back when MHD completes the request, which may be just after the answer is read.
  CHECK(eventually(
      [&] {
        Conn after(l.public_);
        after.send(head(40000) + std::string(40000, 'x'));
        return after.read_answer() == 401;
      },
      5s));
}

TEST_CASE("listeners: a held answer (a refused API key) holds no worker", "[http][listeners][auth-failures]") {
  // Three times as many wrong keys as the control listener has workers, each held 3 s, within the
  // allowance (every loopback address is one client): a worker slept through each hold would keep the
  // right key waiting for 9 s.
  Listeners l(EnvOverrides{{"ALUMIA_AUTH_FAILURE_DELAY_MS", "3000"}, {"ALUMIA_AUTH_FAILURE_BURST", "100"}});
  const std::string wrong = "alm_live_" + std::string(48, '0');
  std::vector<std::unique_ptr<Conn>> guesses;
  const auto start = Clock::now();
  for (int i = 0; i < 24; ++i) {
    guesses.push_back(std::make_unique<Conn>(l.control));
    REQUIRE(guesses.back()->send(get("/api/v1/connections", l.control, "Authorization: Bearer " + wrong + "\r\n")));
  }
  CHECK(l.d.api("GET", "/api/v1/connections").status == 200);
  CHECK(Clock::now() - start < 2s);
  for (auto& g : guesses) {
    CHECK(g->read_answer(10s) == 401);
    CHECK(Clock::now() - start >= 3s);  // each was held
  }
}
