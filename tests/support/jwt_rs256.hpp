#pragma once
// RS256 JWTs minted in tests (PROVIDERS §6 "Minted tokens"): a fresh RSA key, its JWK (n/e as
// unpadded base64url) and compact tokens signed with it. Shared by the unit and functional tests.
#include <alumia/crypto/crypto.hpp>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace alumia::test::jwt {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Pkey generate_rsa(std::size_t bits = 2048) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
  REQUIRE(key);
  return key;
}

// A BIGNUM parameter of the key (OSSL_PKEY_PARAM_RSA_N / _E) as big-endian bytes.
inline std::string bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(key, name, &raw) == 1);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(raw, &BN_free);
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// The public half as a JWKS entry, the way Google publishes it.
inline nlohmann::json jwk_of(EVP_PKEY* key, const std::string& kid) {
  return {{"kty", "RSA"},
          {"alg", "RS256"},
          {"use", "sig"},
          {"kid", kid},
          {"n", encoding::base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_N))},
          {"e", encoding::base64url_encode(bn_param(key, OSSL_PKEY_PARAM_RSA_E))}};
}

// RSASSA-PKCS1-v1_5 with SHA-256 over `input`; the raw signature bytes.
inline std::string rs256(EVP_PKEY* key, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) == 1);
  sig.resize(len);
  return sig;
}

// A compact JWS over the exact header and claims text given.
inline std::string mint(EVP_PKEY* key, const std::string& claims_json, const std::string& header_json) {
  const std::string input = encoding::base64url_encode(header_json) + "." + encoding::base64url_encode(claims_json);
  return input + "." + encoding::base64url_encode(rs256(key, input));
}

// {"alg":"RS256","kid":<kid>,"typ":"JWT"} over `claims`.
inline std::string mint(EVP_PKEY* key, const nlohmann::json& claims, const std::string& kid) {
  return mint(key, claims.dump(), nlohmann::json{{"alg", "RS256"}, {"kid", kid}, {"typ", "JWT"}}.dump());
}

}  // namespace alumia::test::jwt
