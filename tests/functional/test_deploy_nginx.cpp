// The deployment of docs/DEPLOY.md, tested (issue 13 item 7): nginx terminates TLS for a public name
// (hooks.example.com, with a throw-away certificate made here) in front of the daemon's public listener,
// configured as DEPLOY.md says (Host from the request, X-Forwarded-For, body passed as is, kept-alive
// upstream), and real signed GitHub deliveries go through it over TLS: a valid one is accepted and its
// body bytes reach the store and the relay target unchanged (odd whitespace, unnormalised numbers and
// Unicode, so that any re-encoding on the way would break the signature), a duplicate is recognised as
// one, a forged one is refused 401 — each answered through the proxy — and a chunked upload reaches the
// daemon (which refuses Transfer-Encoding) with its length, as nginx's request buffering sends it.
//
// nginx (the Debian package; scripts/install-deps.sh installs it) runs as a child in the foreground,
// single-process, with every path in the temp dir, so it runs as root (CI) and as a normal user alike.
// Without nginx the test fails, naming the package: a deployment test that silently passes would prove
// nothing.
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "process.hpp"
#include "programs.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
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

// --- a throw-away certificate for k_public_name (self-signed, P-256), made with the OpenSSL API ---

struct Pem {
  std::string cert, key;
};

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

Pem self_signed_certificate(const std::string& dns_name) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  X509Ptr cert(X509_new());
  REQUIRE(cert);
  REQUIRE(X509_set_version(cert.get(), 2) == 1);  // v3
  unsigned char serial[8];
  REQUIRE(RAND_bytes(serial, sizeof serial) == 1);
  serial[0] &= 0x7f;  // positive
  uint64_t serial_number = 0;
  for (unsigned char b : serial) serial_number = (serial_number << 8) | b;
  REQUIRE(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial_number) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) != nullptr);
  REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
  X509_NAME* name = X509_get_subject_name(cert.get());
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(dns_name.c_str()),
                                     -1, -1, 0) == 1);
  REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), NID_subject_alt_name, "DNS:" + dns_name);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

  BioPtr cert_bio(BIO_new(BIO_s_mem())), key_bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
  REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  return Pem{bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

void write_private_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  REQUIRE(out);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

// --- nginx as a child process ---

// nginx.conf as docs/DEPLOY.md gives it, with the test's paths and ports: one process in the
// foreground, every file it writes in `dir`, TLS on 127.0.0.1:`port` for k_public_name.
std::string nginx_conf(const fs::path& dir, int port, int upstream_port) {
  auto q = [&](const std::string& name) { return "\"" + (dir / name).string() + "\""; };
  std::ostringstream c;
  c << "daemon off;\n"
    << "master_process off;\n"
    << "pid " << q("nginx.pid") << ";\n"
    << "error_log " << q("error.log") << " info;\n"
    << "events { worker_connections 256; }\n"
    << "http {\n"
    << "  log_format deploy '$status $request_method $request_uri $upstream_addr $upstream_status';\n"
    << "  access_log " << q("access.log") << " deploy;\n"
    << "  client_body_temp_path " << q("client_body") << ";\n"
    << "  proxy_temp_path " << q("proxy") << ";\n"
    << "  fastcgi_temp_path " << q("fastcgi") << ";\n"
    << "  uwsgi_temp_path " << q("uwsgi") << ";\n"
    << "  scgi_temp_path " << q("scgi") << ";\n"
    << "  upstream alumia_public {\n"
    << "    server 127.0.0.1:" << upstream_port << ";\n"
    << "    keepalive 16;\n"
    << "    keepalive_timeout 4s;\n"
    << "  }\n"
    << "  server {\n"
    << "    listen 127.0.0.1:" << port << " ssl;\n"
    << "    server_name " << k_public_name << ";\n"
    << "    ssl_certificate " << q("cert.pem") << ";\n"
    << "    ssl_certificate_key " << q("key.pem") << ";\n"
    << "    ssl_protocols TLSv1.2 TLSv1.3;\n"
    << "    client_max_body_size 25m;\n"
    << "    client_header_timeout 10s;\n"
    << "    client_body_timeout 10s;\n"
    << "    gzip off;\n"
    << "    location / {\n"
    << "      proxy_pass http://alumia_public;\n"
    << "      proxy_http_version 1.1;\n"
    << "      proxy_set_header Connection \"\";\n"
    << "      proxy_set_header Host $host;\n"
    << "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    << "      proxy_set_header X-Forwarded-Proto $scheme;\n"
    << "      proxy_request_buffering on;\n"
    << "      proxy_connect_timeout 5s;\n"
    << "      proxy_send_timeout 30s;\n"
    << "      proxy_read_timeout 30s;\n"
    << "    }\n"
    << "  }\n"
    << "}\n";
  return c.str();
}

// nginx in front of 127.0.0.1:`upstream_port`, serving TLS with `pem` on a free loopback port; stopped
// (SIGQUIT, then SIGKILL after 5 s) when it goes. nginx cannot listen on port 0: a free port is picked
// and, should another process take it first, the start is retried on another, a bounded number of times.
class Nginx {
 public:
  Nginx(const fs::path& dir, int upstream_port, const Pem& pem) : m_dir(dir) {
    const std::string binary = require_program("nginx", "nginx");
    write_private_file(dir / "cert.pem", pem.cert);
    write_private_file(dir / "key.pem", pem.key);
    for (int attempt = 0; attempt < 5 && !m_proc; ++attempt) {
      const int port = free_port();
      std::ofstream(dir / "nginx.conf", std::ios::trunc) << nginx_conf(dir, port, upstream_port);
      fs::remove(dir / "nginx.pid");
      auto proc = std::make_unique<Process>(
          std::vector<std::string>{binary, "-p", dir.string(), "-c", (dir / "nginx.conf").string(), "-e",
                                   (dir / "error.log").string()},
          EnvOverrides{});
      // Ready once it has written its pid file (nginx does so only after binding its listener) and
      // accepts on the port; an exit before that is a failed start (a port taken meanwhile is retried).
      const std::string pid = std::to_string(proc->pid());
      auto ready = [&] {
        std::string text = read_file(dir / "nginx.pid");
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
        return text == pid && port_accepts(port);
      };
      REQUIRE(eventually([&] { return !proc->running() || ready(); }, std::chrono::seconds(15)));
      if (proc->running()) {
        m_proc = std::move(proc);
        m_port = port;
        break;
      }
      const std::string log = error_log() + proc->err();
      INFO("nginx did not start:\n" << log);
      REQUIRE(log.find("Address already in use") != std::string::npos);
    }
    INFO(error_log());
    REQUIRE(m_proc);
  }
  ~Nginx() {
    if (!m_proc) return;
    m_proc->signal(SIGQUIT);  // graceful; wait() SIGKILLs after the deadline
    (void)m_proc->wait(std::chrono::seconds(5));
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  int port() const { return m_port; }
  std::string error_log() const { return read_file(m_dir / "error.log"); }
  std::string access_log() const { return read_file(m_dir / "access.log"); }

 private:
  fs::path m_dir;
  std::unique_ptr<Process> m_proc;
  int m_port = 0;
};

// A relay target on 127.0.0.1:0 that keeps what it receives.
class Sink {
 public:
  std::string url() const { return m_http.url("/hook"); }
  std::vector<std::string> bodies() {
    std::lock_guard lock(m_mutex);
    return m_bodies;
  }
  std::vector<std::string> signatures() {
    std::lock_guard lock(m_mutex);
    return m_signatures;
  }

 private:
  std::mutex m_mutex;
  std::vector<std::string> m_bodies, m_signatures;
  HttpSink m_http{{{"/hook", [this](const httplib::Request& req, httplib::Response& res) {
                      std::lock_guard lock(m_mutex);
                      m_bodies.push_back(req.body);
                      m_signatures.push_back(req.get_header_value("Alumia-Signature"));
                      res.set_content("ok", "text/plain");
                    }}}};  // last: stopped before what its handler writes to is gone
};

// A GitHub delivery whose body no serializer would write: CRLF and tabs between tokens, a space
// before a colon, trailing whitespace, numbers in unnormalised forms, UTF-8 (an accent, a combining
// mark, U+2028, an emoji) next to \u escapes of the same characters. Any re-encoding, Unicode
// normalisation or whitespace trimming on the way changes the bytes and so breaks the signature.
Delivery odd_github_delivery(const std::string& secret, const std::string& delivery_id, bool forged = false) {
  Delivery d;
  d.body =
      "{\r\n\t\"ref\" :\t\"refs/heads/main\" ,\n"
      "  \"head_commit\": {\"message\": \"caf\xC3\xA9 / cafe\xCC\x81 / \\u00e9 \xE2\x80\xA8 \xF0\x9F\x9A\x80 "
      "\\ud83d\\ude80 \\\"quoted\\\"\\ttab\",\n"
      "   \"author\" : { \"name\" : \"Zo\xC3\xAB  \" } },\n"
      "\"size\":1.50 , \"forced\":false,\"big\":12345678901234567890123, \"exp\":1E+2\t}\r\n \t\n";
  const std::string key = forged ? "not-the-secret" : secret;
  d.headers = {
      {"X-Hub-Signature-256", "sha256=" + alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(key, d.body))},
      {"X-GitHub-Event", "push"},
      {"X-GitHub-Delivery", delivery_id},
      {"User-Agent", "GitHub-Hookshot/deploy-test"}};
  return d;
}

// Alumia-Signature: t=<unix>,v1=<hex HMAC-SHA256("t.body")> (SPEC §7).
bool relay_signature_verifies(const std::string& header, const std::string& secret, const std::string& body) {
  const auto comma = header.find(",v1=");
  if (header.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = header.substr(2, comma - 2);
  const std::string expected = alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(secret, t + "." + body));
  return alumia::crypto::equal_ct(expected, header.substr(comma + 4));
}

}  // namespace

TEST_CASE("deployment: signed deliveries through nginx terminating TLS reach the public listener unchanged",
          "[deploy]") {
  Sink sink;
  TempDir home, proxy_dir;
  const std::string base_url = std::string("https://") + k_public_name;
  // nginx runs on this machine: its address is the trusted proxy, as docs/DEPLOY.md says.
  auto options = daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", base_url}, {"ALUMIA_TRUSTED_PROXIES", "127.0.0.1"}});
  options.extra_args = {"--public-listen", "127.0.0.1:0"};
  Daemon d(home.path(), options);
  auto status = d.api("GET", "/api/v1/status");
  REQUIRE(status.status == 200);
  const std::string public_url = status.json()["data"]["publicUrl"];
  const int public_port = std::stoi(public_url.substr(public_url.rfind(':') + 1));

  const Pem pem = self_signed_certificate(k_public_name);
  Nginx nginx(proxy_dir.path(), public_port, pem);

  // The endpoint's receiveUrl is on the base URL; its path is what the provider calls through the proxy.
  json created = create_endpoint(d, {{"provider", "github"}, {"label", "behind nginx"}, {"relayTo", sink.url()}});
  const std::string id = created["endpoint"]["id"];
  const std::string secret = created["secret"];
  const std::string relay_secret = created["relaySecret"];
  const std::string path = receive_path("github", id);
  REQUIRE(created["endpoint"]["receiveUrl"] == base_url + path);

  // A provider's client: TLS to 127.0.0.1 for hooks.example.com (SNI, certificate name, Host), trusting
  // only the throw-away certificate, on one kept-alive connection.
  httplib::SSLClient client(k_public_name, nginx.port());
  client.set_hostname_addr_map({{k_public_name, "127.0.0.1"}});
  client.set_ca_cert_path((proxy_dir.path() / "cert.pem").string());
  client.enable_server_certificate_verification(true);
  client.set_keep_alive(true);
  client.set_connection_timeout(10);
  client.set_read_timeout(30);
  auto post = [&](const Delivery& dl) {
    httplib::Headers h;
    for (const auto& [k, v] : dl.headers) h.emplace(k, v);
    auto res = client.Post(path, h, dl.body, "application/json");
    INFO("TLS client error " << httplib::to_string(res.error()) << "; nginx error log:\n" << nginx.error_log());
    REQUIRE(res);
    return *res;
  };

  const Delivery valid = odd_github_delivery(secret, "d6a1f0e2-deploy-1");

  SECTION("valid, duplicate and forged deliveries, answered through the proxy") {
    auto first = post(valid);
    INFO(first.body << "\nnginx: " << nginx.error_log() << "\ndaemon: " << d.log());
    REQUIRE(first.status == 200);
    CHECK(first.get_header_value("Server").rfind("nginx", 0) == 0);  // answered through nginx
    const json first_json = json::parse(first.body, nullptr, false);
    REQUIRE(first_json["data"]["eventId"].is_string());
    CHECK(first_json["data"].value("duplicate", false) == false);
    const std::string event_id = first_json["data"]["eventId"];

    // Stored byte for byte.
    auto ev = d.api("GET", "/api/v1/connector-events/" + event_id);
    REQUIRE(ev.status == 200);
    const json e = ev.json()["data"];
    CHECK(e["eventKey"] == "github:d6a1f0e2-deploy-1");
    CHECK(e["bodyEncoding"] == "utf-8");
    CHECK(e["body"].get<std::string>() == valid.body);

    // Relayed (the event document of SPEC §7, signed with the endpoint's relay secret) with the
    // provider's body in it byte for byte.
    REQUIRE(eventually([&] { return !sink.bodies().empty(); }, std::chrono::seconds(20)));
    const std::string relayed = sink.bodies().at(0);
    CHECK(relay_signature_verifies(sink.signatures().at(0), relay_secret, relayed));
    const json doc = json::parse(relayed, nullptr, false);
    REQUIRE(doc.is_object());
    CHECK(doc["eventKey"] == "github:d6a1f0e2-deploy-1");
    CHECK(doc["bodyEncoding"] == "utf-8");
    CHECK(doc["body"].get<std::string>() == valid.body);

    // The same delivery again (a provider's retry): recognised, nothing new.
    auto again = post(valid);
    INFO(again.body);
    REQUIRE(again.status == 200);
    CHECK(json::parse(again.body, nullptr, false)["data"]["duplicate"] == true);

    // A forged one (the right body signed with another key): refused, nothing stored.
    auto forged = post(odd_github_delivery(secret, "d6a1f0e2-deploy-2", true));
    INFO(forged.body);
    CHECK(forged.status == 401);
    CHECK(json::parse(forged.body, nullptr, false)["error"]["code"] == "UNAUTHORIZED");

    // A valid body altered in one byte on the way (what a re-encoding proxy would do): refused.
    Delivery altered = odd_github_delivery(secret, "d6a1f0e2-deploy-3");
    altered.body.back() = ' ';
    CHECK(post(altered).status == 401);

    CHECK(events_of(d, id).size() == 1);

    // A chunked upload (no Content-Length; the daemon refuses Transfer-Encoding): nginx buffers the
    // body and sends it on with its length, bytes unchanged, even when the chunks split a UTF-8 sequence.
    const Delivery chunked = odd_github_delivery(secret, "d6a1f0e2-deploy-4");
    httplib::Headers h;
    for (const auto& [k, v] : chunked.headers) h.emplace(k, v);
    auto sent_chunked = client.Post(
        path, h,
        [&](size_t, httplib::DataSink& out) {
          const std::string& b = chunked.body;
          const std::size_t cut = b.find("\xC3\xA9") + 1;  // inside the two bytes of é
          out.write(b.data(), 7);
          out.write(b.data() + 7, cut - 7);
          out.write(b.data() + cut, b.size() - cut);
          out.done();
          return true;
        },
        "application/json");
    REQUIRE(sent_chunked);
    INFO(sent_chunked->body);
    REQUIRE(sent_chunked->status == 200);
    const std::string chunked_event = json::parse(sent_chunked->body, nullptr, false)["data"]["eventId"];
    auto chunked_ev = d.api("GET", "/api/v1/connector-events/" + chunked_event);
    REQUIRE(chunked_ev.status == 200);
    CHECK(chunked_ev.json()["data"]["body"].get<std::string>() == chunked.body);

    CHECK(events_of(d, id).size() == 2);
    CHECK(eventually(
        [&] {
          const json c = endpoint_of(d, id)["counts"];
          return c["received"] == 2 && c["duplicates"] == 1 && c["verificationFailures"] == 2;
        },
        std::chrono::seconds(5)));

    // Each of them went through nginx to the public listener: nginx logged the daemon's answers.
    const std::string log = nginx.access_log();
    INFO(log);
    const std::string upstream = " 127.0.0.1:" + std::to_string(public_port) + " ";
    CHECK(log.find("200 POST " + path + upstream + "200") != std::string::npos);
    CHECK(log.find("401 POST " + path + upstream + "401") != std::string::npos);
  }

  SECTION("the daemon sees the client's address that nginx forwards, not nginx's, nor what the client claims") {
    // A provider on another address, claiming to be 6.6.6.6: nginx appends the address it sees.
    httplib::SSLClient far(k_public_name, nginx.port());
    far.set_hostname_addr_map({{k_public_name, "127.0.0.1"}});
    far.set_interface("127.0.0.7");
    far.set_ca_cert_path((proxy_dir.path() / "cert.pem").string());
    far.enable_server_certificate_verification(true);
    const Delivery forged = odd_github_delivery(secret, "d6a1f0e2-deploy-5", true);
    httplib::Headers h{{"X-Forwarded-For", "6.6.6.6"}};
    for (const auto& [k, v] : forged.headers) h.emplace(k, v);
    auto res = far.Post(path, h, forged.body, "application/json");
    REQUIRE(res);
    CHECK(res->status == 401);
    // The refusal is logged with the sender's address: the forwarded one, since nginx is trusted.
    CHECK(eventually([&] { return d.log().find(" from 127.0.0.7: refused (UNAUTHORIZED)") != std::string::npos; },
                     std::chrono::seconds(5)));
    const std::string log = d.log();
    INFO(log);
    CHECK(log.find("from 127.0.0.1:") == std::string::npos);
    CHECK(log.find("from 6.6.6.6") == std::string::npos);
  }

  SECTION("the Host nginx forwards is the name asked for: the base URL's host passes, any other is refused") {
    // nginx forwards $host, the name the client asked for; the public listener allows the base URL's
    // host (and its own address), so the name of the deployment is served...
    auto ok = client.Get("/healthz");
    REQUIRE(ok);
    CHECK(ok->status == 200);
    // ...and a request naming another host, through the same TLS connection, is refused by the daemon.
    auto other = client.Get("/healthz", {{"Host", "other.example.net"}});
    REQUIRE(other);
    CHECK(other->status == 403);
    CHECK(json::parse(other->body, nullptr, false)["error"]["code"] == "FORBIDDEN");
  }

  CHECK(d.stop() == 0);
}
