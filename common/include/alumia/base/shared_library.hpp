#pragma once
// A shared library loaded when first needed (dlopen) instead of linked, and its functions looked up by
// name into a table of the caller's: what keeps the daemon from mapping, for its whole life, libraries it
// uses only sometimes (docs/ARCHITECTURE.md, "Memory at idle"): libpq for a PostgreSQL store
// (store/pg_conn.cpp), libsecret for the Secret Service (crypto/keyring.cpp), libidn2 for a public base URL
// (net/public_base_url.cpp), GnuTLS for a TLS listener (daemon/gnutls_on_demand.cpp). The library's header
// still gives each function's type (decltype(&::name)).
//
// The contract: open() loads with RTLD_NOW | RTLD_LOCAL (every function resolved now, nothing added to
// the global scope) and never unloads: the handle stays valid for the process's life, so pointers from
// it can be kept in a function-local static table. A failure is an error (SERVICE_UNAVAILABLE) that
// names what the library is for, its file and the Debian package to install. resolve() looks names up;
// the first one missing is kept, for one error naming it.
#include <alumia/base/error.hpp>

#include <string>
#include <string_view>

namespace alumia {

class SharedLibrary {
 public:
  // `what`: what the library is, for the error ("the PostgreSQL client library"); `package`: Debian's.
  static Result<SharedLibrary> open(const char* soname, std::string_view what, std::string_view package);

  // Sets `out` to the function `name` (nullptr if the library lacks it, which missing() then names).
  template <class F>
  void resolve(const char* name, F& out) {
    out = reinterpret_cast<F>(symbol(name));
  }
  // The first name resolve() did not find (empty: every one was found).
  const std::string& missing() const { return m_missing; }
  // The error for a library that lacks missing(): `needed` says which version is needed.
  Error lacks(std::string_view needed) const;

 private:
  SharedLibrary(void* handle, const char* soname, std::string_view package)
      : m_handle(handle), m_soname(soname), m_package(package) {}
  void* symbol(const char* name);

  void* m_handle;
  std::string m_soname;
  std::string m_package;
  std::string m_missing;
};

}  // namespace alumia
