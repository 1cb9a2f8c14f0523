#include <alumia/base/error.hpp>

#include <array>

namespace alumia {
namespace {

constexpr std::array k_errors{
    ErrorInfo{ErrorCode::bad_request, "BAD_REQUEST", 400, 7},
    ErrorInfo{ErrorCode::unauthorized, "UNAUTHORIZED", 401, 4},
    ErrorInfo{ErrorCode::forbidden, "FORBIDDEN", 403, 4},
    ErrorInfo{ErrorCode::not_found, "NOT_FOUND", 404, 5},
    ErrorInfo{ErrorCode::method_not_allowed, "BAD_REQUEST", 405, 7},
    ErrorInfo{ErrorCode::conflict, "CONFLICT", 409, 6},
    ErrorInfo{ErrorCode::length_required, "LENGTH_REQUIRED", 411, 7},
    ErrorInfo{ErrorCode::payload_too_large, "PAYLOAD_TOO_LARGE", 413, 7},
    ErrorInfo{ErrorCode::request_timeout, "REQUEST_TIMEOUT", 408, 1},
    ErrorInfo{ErrorCode::headers_too_large, "HEADERS_TOO_LARGE", 431, 7},
    ErrorInfo{ErrorCode::validation_error, "VALIDATION_ERROR", 422, 7},
    ErrorInfo{ErrorCode::too_many_requests, "TOO_MANY_REQUESTS", 429, 1},
    ErrorInfo{ErrorCode::service_unavailable, "SERVICE_UNAVAILABLE", 503, 1},
    ErrorInfo{ErrorCode::internal, "INTERNAL", 500, 1},
};

}  // namespace

const ErrorInfo& error_info(ErrorCode code) {
  for (const auto& e : k_errors)
    if (e.code == code) return e;
  return k_errors.back();
}

ErrorCode error_code_from_wire(std::string_view wire) {
  for (const auto& e : k_errors)
    if (e.wire == wire) return e.code;  // BAD_REQUEST resolves to bad_request (first entry)
  return ErrorCode::internal;
}

}  // namespace alumia
