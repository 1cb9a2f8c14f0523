// GnuTLS on demand (daemon/gnutls_on_demand.cpp): the daemon links Debian's libmicrohttpd archive, and
// the GnuTLS functions it refers to load libgnutls.so.30 at their first use. A daemon never uses TLS, so
// it never maps GnuTLS (test_daemon_memory.cpp); here MHD serves a request over TLS in this process, through
// the forwarders, so the path a TLS listener would take stays working: the deferred gnutls_global_init,
// the load, credentials, handshake, record I/O and the shutdown.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <httplib.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>

namespace {

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A throw-away P-256 key and a self-signed certificate for 127.0.0.1, in PEM.
struct Credentials {
  std::string key_pem;
  std::string cert_pem;
};

Credentials make_credentials() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                          &EVP_PKEY_free);
  REQUIRE(key != nullptr);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  REQUIRE(cert != nullptr);
  REQUIRE(X509_set_version(cert.get(), 2) == 1);
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600) != nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1,
                                     -1, 0) == 1);
  REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
  REQUIRE(X509_set_pubkey(cert.get(), key.get()) == 1);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);

  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), &BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  REQUIRE(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
  return {bio_text(key_bio.get()), bio_text(cert_bio.get())};
}

MHD_Result answer(void*, MHD_Connection* connection, const char*, const char*, const char*, const char*, size_t*,
                  void**) {
  static const char body[] = "served over TLS";
  MHD_Response* response =
      MHD_create_response_from_buffer(sizeof body - 1, const_cast<char*>(body), MHD_RESPMEM_PERSISTENT);
  const MHD_Result queued = MHD_queue_response(connection, MHD_HTTP_OK, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

TEST_CASE("libmicrohttpd serves TLS through GnuTLS loaded on demand", "[gnutls][tls]") {
  // The forwarders are the executable's own: nothing it links dynamically refers to them, so they are not
  // exported and a GnuTLS that something else loads binds to itself.
  CHECK(::dlsym(RTLD_DEFAULT, "gnutls_global_init") == nullptr);
  CHECK(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES);

  const Credentials credentials = make_credentials();
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  loopback.sin_port = 0;
  MHD_Daemon* mhd = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr,
                                     nullptr, &answer, nullptr, MHD_OPTION_SOCK_ADDR, &loopback,
                                     MHD_OPTION_HTTPS_MEM_KEY, credentials.key_pem.c_str(), MHD_OPTION_HTTPS_MEM_CERT,
                                     credentials.cert_pem.c_str(), MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  REQUIRE(mhd != nullptr);
  std::unique_ptr<MHD_Daemon, decltype(&MHD_stop_daemon)> stop(mhd, &MHD_stop_daemon);
  // Starting a TLS daemon made GnuTLS credentials: the library is loaded now, in this process.
  CHECK(::dlopen("libgnutls.so.30", RTLD_NOW | RTLD_NOLOAD) != nullptr);
  const MHD_DaemonInfo* info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
  REQUIRE(info != nullptr);
  REQUIRE(info->port != 0);

  httplib::SSLClient client("127.0.0.1", info->port);
  client.enable_server_certificate_verification(false);  // a throw-away certificate; the test is the TLS path
  client.set_connection_timeout(10, 0);
  client.set_read_timeout(10, 0);
  for (int i = 0; i < 2; ++i) {  // twice: a second request on the kept-alive TLS connection
    const httplib::Result r = client.Get("/");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "served over TLS");
  }
}
