// deploy/haproxy.cfg, tested (issue 17, docs/SCALE-OUT.md "How to run it"): the sample balancer is
// checked with `haproxy -c` as shipped (only its certificate path replaced by a throw-away certificate
// for hooks.example.com), then rendered with the test's ports — TLS on a loopback port, the two server
// lines naming two real daemons' public listeners on one PostgreSQL, the log on stdout, and without the
// lines that need root (user, group, chroot, stats socket) — and run for real in front of them:
//  - signed GitHub deliveries over TLS: a valid one stored, the same one again answered as a duplicate
//    by the other daemon (round robin), a forged one refused 401;
//  - the client's address forwarded (X-Forwarded-For, the daemons trusting the balancer's address): the
//    refusal is logged with it, not the balancer's, nor what the client claimed;
//  - /readyz as the health check: a stopped daemon's share goes to the other at once (a refused
//    connection is retried on the other daemon: `retry-on conn-failure`, `option redispatch`) and haproxy
//    marks it DOWN; with the database stopped the remaining daemon's /readyz answers 503, haproxy marks it
//    DOWN too (haproxy answers 503 itself), and once the database is back it is UP again and deliveries
//    are stored.
//
// haproxy 2.6 (the Debian package; scripts/install-deps.sh installs it) and the openssl program run as
// children; without them the test fails naming the package: a deployment test that silently passes
// would prove nothing.
#include "cli_helpers.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "programs.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_public_name = "hooks.example.com";
// The lines of deploy/haproxy.cfg the rendering replaces; each must be there exactly once, so the test
// fails when the file changes under it instead of testing something else.
constexpr const char* k_bind = "bind :443 ssl crt /etc/haproxy/certs/hooks.example.com.pem alpn h2,http/1.1";
constexpr const char* k_cert = "/etc/haproxy/certs/hooks.example.com.pem";
constexpr const char* k_server1 = "server daemon1 10.0.0.11:8080";
constexpr const char* k_server2 = "server daemon2 10.0.0.12:8080";
constexpr const char* k_log = "log /dev/log local0";
constexpr const char* k_maxconn = "maxconn 8000";

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  INFO("deploy/haproxy.cfg must hold `" << from << "` once");
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + from.size()) == std::string::npos);
  text.replace(at, from.size(), to);
}

// A throw-away certificate and key for k_public_name in one PEM file, as haproxy's `crt` takes it; the
// certificate alone in `cert.pem` for the client to trust.
fs::path make_certificate(const fs::path& dir) {
  const std::string openssl = require_program("openssl", "openssl");
  const auto made =
      run({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
           std::string("/CN=") + k_public_name, "-addext", std::string("subjectAltName=DNS:") + k_public_name, "-days",
           "1", "-keyout", (dir / "key.pem").string(), "-out", (dir / "cert.pem").string()});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const fs::path pem = dir / "hooks.pem";
  std::ofstream(pem, std::ios::trunc) << read_file(dir / "cert.pem") << read_file(dir / "key.pem");
  fs::permissions(pem, fs::perms::owner_read | fs::perms::owner_write);
  return pem;
}

std::string sample_config() { return read_file(fs::path(ALUMIA_SOURCE_DIR) / "deploy" / "haproxy.cfg"); }

// The sample as an operator runs it, with the test's ports: TLS on 127.0.0.1:`port`, the daemons'
// public listeners, the log on stdout, nothing that needs root.
std::string render(const fs::path& pem, int port, const std::vector<int>& daemon_ports) {
  std::string cfg = sample_config();
  replace_once(cfg, k_bind,
               "bind 127.0.0.1:" + std::to_string(port) + " ssl crt \"" + pem.string() + "\" alpn h2,http/1.1");
  replace_once(cfg, k_server1, "server daemon1 127.0.0.1:" + std::to_string(daemon_ports.at(0)));
  replace_once(cfg, k_server2, "server daemon2 127.0.0.1:" + std::to_string(daemon_ports.at(1)));
  replace_once(cfg, k_log, "log stdout format raw local0");
  // Within any test machine's file descriptor limit (haproxy refuses to start when it cannot raise it).
  replace_once(cfg, k_maxconn, "maxconn 500");
  std::string out;
  std::istringstream lines(cfg);
  for (std::string line; std::getline(lines, line);) {
    static const std::regex k_root_only(R"(^\s*(user|group|chroot|stats socket)\s.*)");
    if (!std::regex_match(line, k_root_only)) out += line + "\n";
  }
  return out;
}

// haproxy in the foreground on a free loopback port (it cannot bind port 0 and say which it got: a free
// port is picked and, should another process take it first, the start is retried); SIGTERM when it goes.
class Haproxy {
 public:
  Haproxy(const fs::path& dir, const fs::path& pem, const std::vector<int>& daemon_ports) {
    const std::string binary = require_program("haproxy", "haproxy");
    for (int attempt = 0; attempt < 5 && !m_proc; ++attempt) {
      const int port = free_port();
      const fs::path cfg = dir / "haproxy.cfg";
      std::ofstream(cfg, std::ios::trunc) << render(pem, port, daemon_ports);
      const auto checked = run({binary, "-c", "-f", cfg.string()});
      INFO("haproxy -c on the rendered file:\n" << checked.out << checked.err);
      REQUIRE(checked.exit_code == 0);
      auto proc =
          std::make_unique<Process>(std::vector<std::string>{binary, "-db", "-f", cfg.string()}, EnvOverrides{});
      REQUIRE(eventually([&] { return !proc->running() || port_accepts(port); }, std::chrono::seconds(15)));
      if (proc->running()) {
        m_proc = std::move(proc);
        m_port = port;
        break;
      }
      INFO("haproxy did not start:\n" << proc->out() << proc->err());
      REQUIRE(proc->err().find("Address already in use") != std::string::npos);
    }
    REQUIRE(m_proc);
  }
  ~Haproxy() {
    if (!m_proc) return;
    m_proc->signal(SIGTERM);
    (void)m_proc->wait(std::chrono::seconds(5));  // SIGKILLs after the deadline
  }
  Haproxy(const Haproxy&) = delete;
  Haproxy& operator=(const Haproxy&) = delete;

  int port() const { return m_port; }
  std::string output() const { return m_proc->out() + m_proc->err(); }
  // The request lines of the log (httplog: "... alumia_public~ alumia_daemons/daemon1 ... \"POST /path
  // HTTP/1.1\""), in order.
  std::vector<std::string> request_lines() const {
    std::vector<std::string> out;
    std::istringstream lines(m_proc->out());
    for (std::string line; std::getline(lines, line);)
      if (line.find(" alumia_public") != std::string::npos && line.find(" alumia_daemons/") != std::string::npos)
        out.push_back(line);
    return out;
  }

 private:
  std::unique_ptr<Process> m_proc;
  int m_port = 0;
};

// "daemon1", "daemon2" or "<NOSRV>" of a request line.
std::string server_of(const std::string& line) {
  static const std::regex k_server(R"( alumia_daemons/(\S+) )");
  std::smatch m;
  return std::regex_search(line, m, k_server) ? m[1].str() : "";
}

struct Answer {
  int status = 0;
  std::string body;
  std::string server;  // which daemon haproxy gave it to, from its log
  json json_body() const { return json::parse(body, nullptr, false); }
};

// A provider: TLS to hooks.example.com (resolved to 127.0.0.1, only the throw-away certificate trusted),
// one new connection per request (so that round robin alternates), from `source_address`.
class Provider {
 public:
  Provider(const Haproxy& lb, fs::path ca) : m_lb(lb), m_ca(std::move(ca)) {}

  Answer post(const std::string& path, const Delivery& d, const std::string& source_address = "127.0.0.1",
              const httplib::Headers& extra = {}) {
    return request("POST", path, d.headers, d.body, source_address, extra);
  }
  Answer get(const std::string& path) { return request("GET", path, {}, {}, "127.0.0.1", {}); }

 private:
  Answer request(const std::string& method, const std::string& path, const HeaderList& headers, const std::string& body,
                 const std::string& source_address, const httplib::Headers& extra) {
    httplib::SSLClient client(k_public_name, m_lb.port());
    client.set_hostname_addr_map({{k_public_name, "127.0.0.1"}});
    client.set_interface(source_address);
    client.set_ca_cert_path(m_ca.string());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(10);
    client.set_read_timeout(30);
    // The name alone, as a provider calling https://hooks.example.com/… sends it (port 443).
    httplib::Headers h{{"Host", k_public_name}};
    for (const auto& [k, v] : headers) h.emplace(k, v);
    for (const auto& [k, v] : extra) h.emplace(k, v);
    const std::size_t logged = m_lb.request_lines().size();
    auto res = method == "POST" ? client.Post(path, h, body, "application/json") : client.Get(path, h);
    INFO("TLS client error " << httplib::to_string(res.error()) << "; haproxy:\n" << m_lb.output());
    REQUIRE(res);
    Answer a{res->status, res->body, ""};
    // haproxy logs a request once it is done, just after the answer: wait for its line.
    REQUIRE(eventually([&] { return m_lb.request_lines().size() > logged; }, std::chrono::seconds(5)));
    a.server = server_of(m_lb.request_lines().back());
    return a;
  }

  const Haproxy& m_lb;
  fs::path m_ca;
};

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

}  // namespace

TEST_CASE("deploy/haproxy.cfg passes haproxy -c as shipped, with a certificate in place", "[deploy]") {
  TempDir dir;
  const fs::path pem = make_certificate(dir.path());
  std::string cfg = sample_config();
  replace_once(cfg, k_cert, "\"" + pem.string() + "\"");  // the temp dir's path has a space
  std::ofstream(dir.path() / "haproxy.cfg", std::ios::trunc) << cfg;
  const auto checked = run({require_program("haproxy", "haproxy"), "-c", "-f", (dir.path() / "haproxy.cfg").string()});
  INFO(checked.out << checked.err);
  CHECK(checked.exit_code == 0);
  CHECK(checked.out.find("Configuration file is valid") != std::string::npos);
  // What the daemons rely on is in it (SCALE-OUT.md): round robin, the readiness check, retries on
  // connect failures only, redispatch, X-Forwarded-For, keep-alive under the daemon's idle timeout.
  std::string directives;  // without the comments, which explain what is not there
  std::istringstream lines(cfg);
  for (std::string line; std::getline(lines, line);) directives += line.substr(0, line.find('#')) + "\n";
  for (const char* line :
       {"balance roundrobin", "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host hooks.example.com",
        "http-check expect status 200", "retry-on conn-failure", "option redispatch", "option forwardfor",
        "timeout http-keep-alive 4s", "http-reuse never"})
    CHECK(directives.find(line) != std::string::npos);
  for (const char* retry : {"all-retryable-errors", "empty-response", "response-timeout", "junk-response", "0rtt"})
    CHECK(directives.find(retry) == std::string::npos);
}

TEST_CASE("deploy/haproxy.cfg runs in front of two daemons on one PostgreSQL", "[deploy][postgres][cluster]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  PostgresServer server;  // its own: the test stops and starts it
  TempDir dir;
  const fs::path keys = dir.path() / "keys";
  fs::create_directory(keys);
  fs::permissions(keys, fs::perms::owner_all);
  // As SCALE-OUT.md says: one store, one master key file, the public name, the balancer trusted.
  auto options = daemon_options({{"ALUMIA_STORE", server.uri(server.fresh_database())},
                                 {"ALUMIA_MASTER_KEY_FILE", (keys / "master.key").string()},
                                 {"CONNECTOR_WEBHOOK_BASE_URL", std::string("https://") + k_public_name},
                                 {"ALUMIA_TRUSTED_PROXIES", "127.0.0.1"}});
  options.extra_args = {"--public-listen", "127.0.0.1:0"};
  // While the database is stopped the daemons log what it refused; nothing else may log an error.
  options.expected_errors = {"PostgreSQL"};
  Daemon a(dir.path() / "a", options);
  Daemon b(dir.path() / "b", options);
  std::vector<int> public_ports;
  for (Daemon* d : {&a, &b}) {
    auto st = d->api("GET", "/api/v1/status");
    REQUIRE(st.status == 200);
    public_ports.push_back(port_of(st.json()["data"]["publicUrl"].get<std::string>()));
  }

  const fs::path pem = make_certificate(dir.path());
  Haproxy lb(dir.path(), pem, public_ports);
  Provider provider(lb, dir.path() / "cert.pem");

  const json created = create_endpoint(a, {{"provider", "github"}, {"label", "behind haproxy"}});
  const Signer signer = make_signer("github", created["secret"], created["endpoint"]["id"]);
  const std::string path = receive_path("github", signer.endpoint_id);
  CHECK(created["endpoint"]["receiveUrl"] == std::string("https://") + k_public_name + path);

  // The readiness route, through the balancer and on each daemon.
  const Answer ready = provider.get("/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.json_body()["data"] == json{{"ok", true}, {"store", "up"}});

  // A delivery, then the same one again: the other daemon answers it as a duplicate of the same event.
  // The daemon that did not create the endpoint learns of it within a second (SPEC §12): until then it
  // answers 404, and the provider retries.
  const Delivery first = make_delivery(signer, 1);
  Answer stored;
  CHECK(eventually(
      [&] {
        stored = provider.post(path, first);
        return stored.status != 404;
      },
      std::chrono::seconds(5)));
  INFO(stored.body << "\nhaproxy:\n" << lb.output());
  REQUIRE(stored.status == 200);
  CHECK(stored.json_body()["data"].value("duplicate", false) == false);
  const Answer again = provider.post(path, first);
  INFO(again.body);
  REQUIRE(again.status == 200);
  CHECK(again.json_body()["data"]["duplicate"] == true);
  CHECK(again.json_body()["data"]["eventId"] == stored.json_body()["data"]["eventId"]);
  CHECK((stored.server == "daemon1" || stored.server == "daemon2"));
  CHECK((again.server == "daemon1" || again.server == "daemon2"));
  CHECK(again.server != stored.server);

  // A forged one from another address, claiming a third: refused, and logged by the daemon that took
  // it with the address haproxy saw (the balancer is trusted), not the balancer's nor the claimed one.
  const Answer forged =
      provider.post(path, make_delivery(signer, 2, true), "127.0.0.7", {{"X-Forwarded-For", "6.6.6.6"}});
  CHECK(forged.status == 401);
  CHECK(forged.json_body()["error"]["code"] == "UNAUTHORIZED");
  Daemon& refuser = forged.server == "daemon1" ? a : b;
  CHECK(eventually([&] { return refuser.log().find(" from 127.0.0.7: refused (UNAUTHORIZED)") != std::string::npos; },
                   std::chrono::seconds(5)));
  for (Daemon* d : {&a, &b}) {
    CHECK(d->log().find("from 6.6.6.6") == std::string::npos);
    CHECK(d->log().find("from 127.0.0.1: refused") == std::string::npos);
  }
  CHECK(events_of(a, signer.endpoint_id).size() == 1);

  // One daemon stops: every delivery is still answered, by the other (a refused connection is retried
  // there at once), and haproxy's check marks the stopped one DOWN.
  CHECK(a.stop() == 0);
  for (int n = 10; n < 16; ++n) {
    const Answer answer = provider.post(path, make_delivery(signer, n));
    INFO(answer.body << "\nhaproxy:\n" << lb.output());
    CHECK(answer.status == 200);
    CHECK(answer.server == "daemon2");
  }
  CHECK(events_of(b, signer.endpoint_id).size() == 7);
  CHECK(eventually([&] { return lb.output().find("alumia_daemons/daemon1 is DOWN") != std::string::npos; },
                   std::chrono::seconds(10)));

  // The database stops: the remaining daemon's /readyz says so, haproxy marks it DOWN and answers 503
  // itself; once the database is back, the daemon is UP again and deliveries are stored.
  server.stop();
  auto direct = http_request("GET", b.url() + "/readyz");
  CHECK(direct.status == 503);
  CHECK(direct.json()["error"]["code"] == "SERVICE_UNAVAILABLE");
  CHECK(eventually([&] { return lb.output().find("alumia_daemons/daemon2 is DOWN") != std::string::npos; },
                   std::chrono::seconds(10)));
  const Answer none = provider.post(path, make_delivery(signer, 20));
  CHECK(none.status == 503);
  CHECK(none.server == "<NOSRV>");
  server.start();
  CHECK(eventually([&] { return lb.output().find("alumia_daemons/daemon2 is UP") != std::string::npos; },
                   std::chrono::seconds(15)));
  // The first delivery may meet a pooled connection the restart broke and be answered 503 (the daemon
  // reconnects for the next): the provider's retry of the same delivery is stored.
  const Delivery after = make_delivery(signer, 21);
  Answer back;
  CHECK(eventually(
      [&] {
        back = provider.post(path, after);
        return back.status == 200;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(200)));
  INFO(back.body << "\ndaemon2:\n" << b.log());
  CHECK(back.server == "daemon2");
  CHECK(back.json_body()["data"].value("duplicate", false) == false);
  CHECK(events_of(b, signer.endpoint_id).size() == 8);
  CHECK(b.stop() == 0);
}
