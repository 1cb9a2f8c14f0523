#pragma once
// Helpers for the webhook verifier tests (tests/unit/test_webhook_*.cpp).
#include <alumia/crypto/crypto.hpp>
#include <alumia/net/http.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>

namespace alumia::webhooks::testing {

inline http::Request post(std::string body, http::Headers headers, std::string target = "/hook") {
  http::Request req;
  req.method = "POST";
  req.target = target;
  req.path = target.substr(0, target.find('?'));
  req.headers = std::move(headers);
  req.body = std::move(body);
  return req;
}

inline EndpointConfig endpoint(std::string provider, std::vector<std::string> secrets) {
  EndpointConfig ep;
  ep.provider = parse_provider(provider).value();
  ep.secrets = std::move(secrets);
  return ep;
}

inline Result<Verdict> run(const EndpointConfig& ep, const http::Request& req, int64_t now_unix,
                           JwksSource* jwks = nullptr, std::string public_url = {}) {
  VerifyContext ctx{ep, now_unix * 1000, jwks, std::move(public_url)};
  return find_verifier(ep.provider).verify(req, ctx);
}

inline Result<Verdict> run_ms(const EndpointConfig& ep, const http::Request& req, int64_t now_ms) {
  VerifyContext ctx{ep, now_ms, nullptr, {}};
  return find_verifier(ep.provider).verify(req, ctx);
}

inline std::string hex_hmac_sha256(std::string_view key, std::string_view data) {
  return encoding::hex_encode(crypto::hmac_sha256(key, data));
}

// Flips one hex digit (0<->1 keeps it valid hex).
inline std::string flip_hex(std::string hex, std::size_t pos = 0) {
  hex[pos] = hex[pos] == '0' ? '1' : '0';
  return hex;
}

inline ErrorCode code_of(const Result<Verdict>& r) { return r ? ErrorCode::internal : r.error().code; }

}  // namespace alumia::webhooks::testing

#define REQUIRE_UNAUTHORIZED(expr)                                      \
  do {                                                                  \
    auto alumia_r_ = (expr);                                            \
    REQUIRE_FALSE(alumia_r_.has_value());                               \
    INFO(alumia_r_.error().message);                                    \
    CHECK(alumia_r_.error().code == ::alumia::ErrorCode::unauthorized); \
    CHECK(alumia_r_.error().http_status() == 401);                      \
  } while (false)

#define REQUIRE_OK(expr, var)                                  \
  auto var = (expr);                                           \
  if (!var) FAIL("unexpected error: " << var.error().message); \
  REQUIRE(var.has_value())
