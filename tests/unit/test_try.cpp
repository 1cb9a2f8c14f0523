// TRY (alumia/base/try.hpp): the value of a Result, nothing for a Status, or the error returned at once.
#include <alumia/base/error.hpp>
#include <alumia/base/try.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace {

using alumia::ErrorCode;
using alumia::Result;
using alumia::Status;

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return alumia::fail(ErrorCode::bad_request, std::string("not a digit: ") + c);
  return c - '0';
}

Status check_even(int n) {
  if (n % 2 != 0) return alumia::fail(ErrorCode::validation_error, std::to_string(n) + " is odd");
  return {};
}

Result<int> twice_even(char c, int& steps) {
  const int n = TRY(parse_digit(c));
  ++steps;
  TRY(check_even(n));
  ++steps;
  return 2 * n;
}

Result<std::unique_ptr<int>> boxed(int n) { return std::make_unique<int>(n); }

Result<int> unbox(int n) {
  std::unique_ptr<int> p = TRY(boxed(n));  // a move-only value is moved out
  return *p;
}

}  // namespace

TEST_CASE("TRY yields the value, and returns the first error unchanged", "[base][try]") {
  int steps = 0;
  auto ok = twice_even('4', steps);
  REQUIRE(ok);
  CHECK(*ok == 8);
  CHECK(steps == 2);

  steps = 0;
  auto not_digit = twice_even('x', steps);
  REQUIRE_FALSE(not_digit);
  CHECK(not_digit.error().code == ErrorCode::bad_request);
  CHECK(not_digit.error().message == "not a digit: x");
  CHECK(steps == 0);  // nothing after the failed TRY ran

  steps = 0;
  auto odd = twice_even('3', steps);
  REQUIRE_FALSE(odd);
  CHECK(odd.error().code == ErrorCode::validation_error);
  CHECK(odd.error().message == "3 is odd");
  CHECK(steps == 1);

  CHECK(unbox(7).value() == 7);
}
