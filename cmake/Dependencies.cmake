# Every dependency comes from its Debian package (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(SQLiteCpp REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(uriparser REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# The daemon's listeners: Debian's libmicrohttpd, linked from its archive (libmicrohttpd.a, same package and
# build as the shared library) so that GnuTLS, which Debian's build links for HTTPS, is loaded only if TLS is
# ever used (daemon/gnutls_on_demand.cpp says why: ~2.3 MB of idle RSS). The target is made in daemon/.
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.75)
find_library(ALUMIA_MICROHTTPD_ARCHIVE NAMES libmicrohttpd.a HINTS ${MICROHTTPD_LIBRARY_DIRS} REQUIRED)
pkg_check_modules(IDN2 REQUIRED IMPORTED_TARGET libidn2)  # IDNA of the public base URL (common/net)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)  # the PostgreSQL store: headers only, dlopened (common/store/pg_conn.cpp)
pkg_check_modules(LIBSECRET REQUIRED IMPORTED_TARGET libsecret-1)
if(ALUMIA_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
endif()
