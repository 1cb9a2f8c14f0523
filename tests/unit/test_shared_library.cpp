// SharedLibrary (alumia/base/shared_library.hpp): the loader behind the libraries the daemon maps only when
// it uses them (libpq, libsecret, libidn2, GnuTLS). Its errors name what the library is for, its file and the
// Debian package; a function it lacks is named once, the first one.
#include <alumia/base/shared_library.hpp>

#include <catch2/catch.hpp>

#include <cstring>

using alumia::ErrorCode;
using alumia::SharedLibrary;

TEST_CASE("SharedLibrary: a library that cannot be loaded is an error naming it and its package", "[shared-library]") {
  const auto so = SharedLibrary::open("libalumia-no-such-library.so.9", "the example library", "libexample9");
  REQUIRE_FALSE(so);
  CHECK(so.error().code == ErrorCode::service_unavailable);
  const std::string& m = so.error().message;
  CHECK(m.starts_with("the example library libalumia-no-such-library.so.9 cannot be loaded ("));
  CHECK(m.ends_with("): install it (Debian: apt-get install libexample9)"));
}

TEST_CASE("SharedLibrary: functions are looked up by name; the first one missing is named", "[shared-library]") {
  auto so = SharedLibrary::open("libc.so.6", "the C library", "libc6");
  REQUIRE(so);
  decltype(&::strlen) length = nullptr;
  so->resolve("strlen", length);
  REQUIRE(length != nullptr);
  CHECK(length("four") == 4);
  CHECK(so->missing().empty());

  void (*absent)() = nullptr;
  void (*also_absent)() = nullptr;
  so->resolve("alumia_no_such_function", absent);
  so->resolve("alumia_nor_this_one", also_absent);
  CHECK(absent == nullptr);
  CHECK(also_absent == nullptr);
  CHECK(so->missing() == "alumia_no_such_function");
  const alumia::Error lacks = so->lacks("glibc 2.36 or later is needed");
  CHECK(lacks.code == ErrorCode::service_unavailable);
  CHECK(lacks.message ==
        "libc.so.6 lacks alumia_no_such_function (glibc 2.36 or later is needed: apt-get install libc6)");
}
