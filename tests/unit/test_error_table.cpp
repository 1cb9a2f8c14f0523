// The one error table (SPEC §3 codes and HTTP statuses, §10 CLI exit codes): every ErrorCode once.
#include <alumia/base/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

using alumia::ErrorCode;

struct Expected {
  ErrorCode code;
  std::string wire;
  int status;
  int exit_code;
};

// Written out from the SPEC, not from error.cpp, so a drift in either is caught here.
const std::vector<Expected> k_expected{
    {ErrorCode::bad_request, "BAD_REQUEST", 400, 7},
    {ErrorCode::unauthorized, "UNAUTHORIZED", 401, 4},
    {ErrorCode::forbidden, "FORBIDDEN", 403, 4},
    {ErrorCode::not_found, "NOT_FOUND", 404, 5},
    {ErrorCode::method_not_allowed, "BAD_REQUEST", 405, 7},  // §3: 405 with code BAD_REQUEST
    {ErrorCode::conflict, "CONFLICT", 409, 6},
    {ErrorCode::length_required, "LENGTH_REQUIRED", 411, 7},  // a malformed request, like 413
    {ErrorCode::payload_too_large, "PAYLOAD_TOO_LARGE", 413, 7},
    {ErrorCode::request_timeout, "REQUEST_TIMEOUT", 408, 1},      // a slow client: retry
    {ErrorCode::headers_too_large, "HEADERS_TOO_LARGE", 431, 7},  // a malformed request, like 413
    {ErrorCode::validation_error, "VALIDATION_ERROR", 422, 7},
    {ErrorCode::too_many_requests, "TOO_MANY_REQUESTS", 429, 1},
    {ErrorCode::service_unavailable, "SERVICE_UNAVAILABLE", 503, 1},
    {ErrorCode::internal, "INTERNAL", 500, 1},
};

}  // namespace

TEST_CASE("every error code has its SPEC wire string, HTTP status and exit code", "[unit][errors]") {
  for (const auto& e : k_expected) {
    CAPTURE(e.wire, e.status);
    const auto& info = alumia::error_info(e.code);
    CHECK(info.code == e.code);
    CHECK(std::string(info.wire) == e.wire);
    CHECK(info.http_status == e.status);
    CHECK(info.exit_code == e.exit_code);
    const alumia::Error err{e.code, "m", 0};
    CHECK(std::string(err.wire()) == e.wire);
    CHECK(err.http_status() == e.status);
  }
}

TEST_CASE("the table covers every ErrorCode and each HTTP status once", "[unit][errors]") {
  std::set<int> statuses;
  for (const auto& e : k_expected) statuses.insert(alumia::error_info(e.code).http_status);
  CHECK(statuses.size() == k_expected.size());
  // The enum runs from bad_request to internal; every value in between is listed above.
  CHECK(static_cast<int>(ErrorCode::internal) + 1 == static_cast<int>(k_expected.size()));
}

TEST_CASE("wire strings parse back to their codes", "[unit][errors]") {
  for (const auto& e : k_expected) {
    CAPTURE(e.wire);
    const ErrorCode back = alumia::error_code_from_wire(e.wire);
    CHECK(std::string(alumia::error_info(back).wire) == e.wire);
    CHECK(alumia::error_info(back).exit_code == e.exit_code);
  }
  CHECK(alumia::error_code_from_wire("BAD_REQUEST") == ErrorCode::bad_request);
  CHECK(alumia::error_code_from_wire("NOT_A_CODE") == ErrorCode::internal);
  CHECK(alumia::error_code_from_wire("") == ErrorCode::internal);
  CHECK(alumia::error_code_from_wire("not_found") == ErrorCode::internal);  // the contract is upper case
}

TEST_CASE("CLI-only exit codes match SPEC §10", "[unit][errors]") {
  CHECK(alumia::k_exit_ok == 0);
  CHECK(alumia::k_exit_error == 1);
  CHECK(alumia::k_exit_usage == 2);
  CHECK(alumia::k_exit_unreachable == 3);
  CHECK(alumia::k_exit_timeout == 8);
  CHECK(alumia::k_exit_interrupted == 130);
}

TEST_CASE("fail() builds an unexpected Error without Retry-After", "[unit][errors]") {
  alumia::Status st = alumia::fail(ErrorCode::conflict, "already revoked");
  REQUIRE_FALSE(st);
  CHECK(st.error().code == ErrorCode::conflict);
  CHECK(st.error().message == "already revoked");
  CHECK(st.error().retry_after_seconds == 0);
}
