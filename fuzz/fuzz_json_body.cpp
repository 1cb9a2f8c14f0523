// The control API's JSON bodies (daemon/wire.cpp): parse_json_body and every typed body parser on what
// it returns. The input is the request body. A malformed body must be BAD_REQUEST or VALIDATION_ERROR
// (SPEC §3), never another error, and never an exception.
#include "fuzz_common.hpp"

#include "wire.hpp"

#include <cstdint>
#include <string>

using namespace alumia;

namespace {

template <typename T>
void expect_client_error(const Result<T>& r, std::string_view parser) {
  if (r) return;
  const ErrorCode code = r.error().code;
  if (code != ErrorCode::bad_request && code != ErrorCode::validation_error)
    fuzz::finding("fuzz_json_body", parser, r.error().message);
  if (r.error().message.empty()) fuzz::finding("fuzz_json_body", "an error without a message", parser);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::Request req;
  req.method = "POST";
  req.body = std::string(fuzz::as_text(data, size));
  const auto body = daemon::parse_json_body(req);
  expect_client_error(body, "parse_json_body");
  if (!body) return 0;
  expect_client_error(daemon::parse_create_api_key(*body), "parse_create_api_key");
  expect_client_error(daemon::parse_start_connection(*body), "parse_start_connection");
  expect_client_error(daemon::parse_submit_credentials(*body), "parse_submit_credentials");
  expect_client_error(daemon::parse_set_oauth_client(*body), "parse_set_oauth_client");
  expect_client_error(daemon::parse_setup_options(*body), "parse_setup_options");
  return 0;
}
