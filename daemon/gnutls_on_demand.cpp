// GnuTLS for libmicrohttpd, loaded only if a listener ever speaks TLS (none does today).
//
// Why. Debian's libmicrohttpd is built with HTTPS, so linking its shared library maps GnuTLS and what
// GnuTLS brings (p11-kit, nettle, hogweed, gmp, tasn1, unistring, idn2, ffi) into every daemon, and MHD's
// library constructor (MHD_init) initialises GnuTLS: ~2.3 MB of idle RSS (docs/ARCHITECTURE.md, "Memory
// at idle"; issue 13 item 5: idle RSS <= 12 MiB) for code the daemon never runs, since TLS ends at the
// reverse proxy or tunnel in front of it (docs/DEPLOY.md). The daemon therefore links Debian's own
// archive of the same build (libmicrohttpd.a, from libmicrohttpd-dev; cmake/Dependencies.cmake), and
// this file defines the 37 GnuTLS functions (and the one variable) that archive refers to. Each forwards
// to the real function of libgnutls.so.30, which is loaded with dlopen at the first call that needs it:
// MHD's HTTPS code keeps working, it just pays for GnuTLS when it is used (tests/unit/test_gnutls_on_demand.cpp
// serves a request over TLS through it).
//
// The contract:
// - gnutls_global_init / gnutls_global_deinit before the load only count (MHD_init and MHD_fini call them
//   at start and exit). The load replays the count, so GnuTLS sees the same initialisations it would have.
// - The load happens once, under a lock; a failure is kept. Once loaded, a call takes no lock. A function
//   that can report an error returns GNUTLS_E_INTERNAL_ERROR without GnuTLS (MHD then refuses to start a
//   TLS listener and says why); the ones that cannot (void, pointers, sizes) are only reachable with a session or
//   credentials that such a call created, so reaching one without the library is a broken invariant: abort with a
//   message.
// - The definitions take their types from <gnutls/gnutls.h> and <gnutls/abstract.h>: a definition that
//   does not match GnuTLS's declaration does not compile. The executable does not export them (nothing it
//   links dynamically refers to them), so a GnuTLS loaded by something else (libpq through libldap, for a
//   PostgreSQL store) binds to itself, never to these.
// - A GnuTLS that lacks one of the names is refused whole (the load fails), as libpq's table is
//   (alumia/base/shared_library.hpp, common/store/pg_conn.cpp).
#include <alumia/base/shared_library.hpp>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

// The functions, beside gnutls_global_init/deinit: X(return type, name, (parameters), (arguments), failure)
// where failure is what the function returns when GnuTLS cannot be loaded, or k_abort when it has no way to
// say so (see the contract above).
#define ALUMIA_GNUTLS_FUNCTIONS(X)                                                                                    \
  X(int, gnutls_alpn_set_protocols, (gnutls_session_t s, const gnutls_datum_t* p, unsigned n, unsigned f),            \
    (s, p, n, f), GNUTLS_E_INTERNAL_ERROR)                                                                            \
  X(int, gnutls_bye, (gnutls_session_t s, gnutls_close_request_t how), (s, how), GNUTLS_E_INTERNAL_ERROR)             \
  X(int, gnutls_certificate_allocate_credentials, (gnutls_certificate_credentials_t * res), (res),                    \
    GNUTLS_E_INTERNAL_ERROR)                                                                                          \
  X(void, gnutls_certificate_free_credentials, (gnutls_certificate_credentials_t c), (c), k_abort)                    \
  X(void, gnutls_certificate_server_set_request, (gnutls_session_t s, gnutls_certificate_request_t r), (s, r),        \
    k_abort)                                                                                                          \
  X(void, gnutls_certificate_set_dh_params, (gnutls_certificate_credentials_t c, gnutls_dh_params_t p), (c, p),       \
    k_abort)                                                                                                          \
  X(void, gnutls_certificate_set_retrieve_function2,                                                                  \
    (gnutls_certificate_credentials_t c, gnutls_certificate_retrieve_function2 * f), (c, f), k_abort)                 \
  X(void, gnutls_certificate_set_retrieve_function3,                                                                  \
    (gnutls_certificate_credentials_t c, gnutls_certificate_retrieve_function3 * f), (c, f), k_abort)                 \
  X(int, gnutls_certificate_set_x509_key_mem,                                                                         \
    (gnutls_certificate_credentials_t c, const gnutls_datum_t* cert, const gnutls_datum_t* key,                       \
     gnutls_x509_crt_fmt_t t),                                                                                        \
    (c, cert, key, t), GNUTLS_E_INTERNAL_ERROR)                                                                       \
  X(int, gnutls_certificate_set_x509_key_mem2,                                                                        \
    (gnutls_certificate_credentials_t c, const gnutls_datum_t* cert, const gnutls_datum_t* key,                       \
     gnutls_x509_crt_fmt_t t, const char* pass, unsigned int flags),                                                  \
    (c, cert, key, t, pass, flags), GNUTLS_E_INTERNAL_ERROR)                                                          \
  X(int, gnutls_certificate_set_x509_trust_mem,                                                                       \
    (gnutls_certificate_credentials_t c, const gnutls_datum_t* ca, gnutls_x509_crt_fmt_t t), (c, ca, t),              \
    GNUTLS_E_INTERNAL_ERROR)                                                                                          \
  X(gnutls_cipher_algorithm_t, gnutls_cipher_get, (gnutls_session_t s), (s), k_abort)                                 \
  X(int, gnutls_credentials_set, (gnutls_session_t s, gnutls_credentials_type_t t, void* cred), (s, t, cred),         \
    GNUTLS_E_INTERNAL_ERROR)                                                                                          \
  X(void, gnutls_deinit, (gnutls_session_t s), (s), k_abort)                                                          \
  X(void, gnutls_dh_params_deinit, (gnutls_dh_params_t p), (p), k_abort)                                              \
  X(int, gnutls_dh_params_import_pkcs3, (gnutls_dh_params_t p, const gnutls_datum_t* d, gnutls_x509_crt_fmt_t f),     \
    (p, d, f), GNUTLS_E_INTERNAL_ERROR)                                                                               \
  X(int, gnutls_dh_params_init, (gnutls_dh_params_t * p), (p), GNUTLS_E_INTERNAL_ERROR)                               \
  X(int, gnutls_handshake, (gnutls_session_t s), (s), GNUTLS_E_INTERNAL_ERROR)                                        \
  X(int, gnutls_init, (gnutls_session_t * s, unsigned int flags), (s, flags), GNUTLS_E_INTERNAL_ERROR)                \
  X(void, gnutls_priority_deinit, (gnutls_priority_t p), (p), k_abort)                                                \
  X(int, gnutls_priority_init, (gnutls_priority_t * p, const char* priorities, const char** err_pos),                 \
    (p, priorities, err_pos), GNUTLS_E_INTERNAL_ERROR)                                                                \
  X(int, gnutls_priority_set, (gnutls_session_t s, gnutls_priority_t p), (s, p), GNUTLS_E_INTERNAL_ERROR)             \
  X(gnutls_protocol_t, gnutls_protocol_get_version, (gnutls_session_t s), (s), k_abort)                               \
  X(void, gnutls_psk_free_server_credentials, (gnutls_psk_server_credentials_t c), (c), k_abort)                      \
  X(int, gnutls_psk_allocate_server_credentials, (gnutls_psk_server_credentials_t * c), (c), GNUTLS_E_INTERNAL_ERROR) \
  X(void, gnutls_psk_set_server_credentials_function,                                                                 \
    (gnutls_psk_server_credentials_t c, gnutls_psk_server_credentials_function * f), (c, f), k_abort)                 \
  X(size_t, gnutls_record_check_pending, (gnutls_session_t s), (s), k_abort)                                          \
  X(int, gnutls_record_get_direction, (gnutls_session_t s), (s), k_abort)                                             \
  X(ssize_t, gnutls_record_recv, (gnutls_session_t s, void* data, size_t size), (s, data, size),                      \
    GNUTLS_E_INTERNAL_ERROR)                                                                                          \
  X(ssize_t, gnutls_record_send, (gnutls_session_t s, const void* data, size_t size), (s, data, size),                \
    GNUTLS_E_INTERNAL_ERROR)                                                                                          \
  X(void*, gnutls_session_get_ptr, (gnutls_session_t s), (s), k_abort)                                                \
  X(void, gnutls_session_set_ptr, (gnutls_session_t s, void* ptr), (s, ptr), k_abort)                                 \
  X(const char*, gnutls_strerror, (int error), (error), "GnuTLS could not be loaded")                                 \
  X(void, gnutls_transport_set_int2, (gnutls_session_t s, int r, int w), (s, r, w), k_abort)

constexpr const char* k_gnutls_soname = "libgnutls.so.30";

struct Gnutls {
  decltype(&::gnutls_global_init) gnutls_global_init;
  decltype(&::gnutls_global_deinit) gnutls_global_deinit;
#define ALUMIA_GNUTLS_MEMBER(ret, name, params, args, failure) decltype(&::name) name;
  ALUMIA_GNUTLS_FUNCTIONS(ALUMIA_GNUTLS_MEMBER)
#undef ALUMIA_GNUTLS_MEMBER
};

// The table once loaded (nullptr before, or when the load failed): written once, under g_mutex, and read
// without it by every forwarded call (a TLS listener's record I/O must not serialise on a lock).
std::atomic<const Gnutls*> g_loaded{nullptr};
// Guarded by g_mutex: whether the load was tried, and the initialisations asked for before it.
std::mutex g_mutex;
bool g_tried = false;
int g_pending_inits = 0;

const Gnutls* load_locked() {
  if (g_tried) return g_loaded.load(std::memory_order_relaxed);
  g_tried = true;
  auto so = alumia::SharedLibrary::open(k_gnutls_soname, "TLS needs GnuTLS, and its library", "libgnutls30");
  if (!so) {
    std::fprintf(stderr, "alumia-connectd: %s\n", so.error().message.c_str());
    return nullptr;
  }
  static Gnutls lib{};
  so->resolve("gnutls_global_init", lib.gnutls_global_init);
  so->resolve("gnutls_global_deinit", lib.gnutls_global_deinit);
#define ALUMIA_GNUTLS_RESOLVE(ret, name, params, args, failure) so->resolve(#name, lib.name);
  ALUMIA_GNUTLS_FUNCTIONS(ALUMIA_GNUTLS_RESOLVE)
#undef ALUMIA_GNUTLS_RESOLVE
  gnutls_alloc_function* real_malloc = nullptr;
  so->resolve("gnutls_malloc", real_malloc);
  if (!so->missing().empty()) {  // the handle stays open: a library is never unloaded
    std::fprintf(stderr, "alumia-connectd: %s\n", so->lacks("GnuTLS 3.6 or later is needed").message.c_str());
    return nullptr;
  }
  gnutls_malloc = *real_malloc;  // what GnuTLS's gnutls_free expects memory handed to it to come from
  for (; g_pending_inits > 0; --g_pending_inits)
    if (lib.gnutls_global_init() < 0) return nullptr;
  g_loaded.store(&lib, std::memory_order_release);
  return &lib;
}

const Gnutls* gnutls() {
  if (const Gnutls* lib = g_loaded.load(std::memory_order_acquire)) return lib;
  std::lock_guard lock(g_mutex);
  return load_locked();
}

// What a function returns when GnuTLS cannot be loaded: its failure value, or (k_abort) nothing.
struct Abort {};
constexpr Abort k_abort{};

template <class R>
R fail_with(const char* name, Abort) {
  std::fprintf(stderr, "alumia-connectd: %s called although %s was never loaded\n", name, k_gnutls_soname);
  std::abort();
}

template <class R, class V>
R fail_with(const char*, V failure) {
  return static_cast<R>(failure);
}

}  // namespace

extern "C" {

// GnuTLS's allocator for memory it will free (MHD's PSK callback allocates keys with it): malloc, as in
// GnuTLS itself, until the library is loaded and says otherwise.
gnutls_alloc_function gnutls_malloc = ::malloc;

int gnutls_global_init(void) {
  std::lock_guard lock(g_mutex);
  if (const Gnutls* lib = g_loaded.load(std::memory_order_relaxed)) return lib->gnutls_global_init();
  ++g_pending_inits;  // replayed by the load, if it ever happens
  return GNUTLS_E_SUCCESS;
}

void gnutls_global_deinit(void) {
  std::lock_guard lock(g_mutex);
  if (const Gnutls* lib = g_loaded.load(std::memory_order_relaxed)) lib->gnutls_global_deinit();
  else if (g_pending_inits > 0) --g_pending_inits;
}

#define ALUMIA_GNUTLS_DEFINE(ret, name, params, args, failure) \
  ret name params {                                            \
    const Gnutls* lib = gnutls();                              \
    if (lib == nullptr) return fail_with<ret>(#name, failure); \
    return lib->name args;                                     \
  }
ALUMIA_GNUTLS_FUNCTIONS(ALUMIA_GNUTLS_DEFINE)
#undef ALUMIA_GNUTLS_DEFINE
}
