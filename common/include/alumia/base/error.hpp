#pragma once
// One enum of error codes and one table that maps each to its wire string, HTTP status and CLI exit
// code (SPEC §3, §10). Inside the program every fallible call returns Result<T>.
#include <expected>
#include <string>
#include <string_view>

namespace alumia {

enum class ErrorCode {
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  method_not_allowed,  // wire code BAD_REQUEST, HTTP 405
  conflict,
  length_required,
  payload_too_large,
  request_timeout,    // headers or body too slow (the listeners' deadlines); the connection is closed
  headers_too_large,  // too many header lines or header bytes
  validation_error,
  too_many_requests,
  service_unavailable,
  internal,
};

struct ErrorInfo {
  ErrorCode code;
  std::string_view wire;  // the contract string, e.g. "NOT_FOUND"
  int http_status;
  int exit_code;  // the CLI's exit code for this error
};

// The table itself; every entry of ErrorCode appears exactly once.
const ErrorInfo& error_info(ErrorCode code);
// Parse a wire string back (the CLI reads the daemon's envelope). Unknown strings map to internal.
ErrorCode error_code_from_wire(std::string_view wire);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  int retry_after_seconds = 0;  // TOO_MANY_REQUESTS / SERVICE_UNAVAILABLE only

  std::string_view wire() const { return error_info(code).wire; }
  int http_status() const { return error_info(code).http_status; }
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message), 0});
}

// CLI-only exit codes that no envelope code maps to.
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_error = 1;
inline constexpr int k_exit_usage = 2;
inline constexpr int k_exit_unreachable = 3;
inline constexpr int k_exit_timeout = 8;
inline constexpr int k_exit_interrupted = 130;

}  // namespace alumia
