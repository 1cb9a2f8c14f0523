// Asymmetric signature checks (Discord Ed25519, Google RS256 JWTs) over OpenSSL 3.
#include "openssl_util.hpp"

#include <alumia/crypto/crypto.hpp>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <memory>

namespace alumia::crypto {

namespace {

struct ParamBldDeleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, ParamBldDeleter>;
using Params = std::unique_ptr<OSSL_PARAM, ParamDeleter>;
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// A failed check is an answer, not an error: clear the queue so it does not leak into the next
// caller's error message.
bool fail_quietly() {
  ERR_clear_error();
  return false;
}

bool digest_verify(EVP_PKEY* pkey, const EVP_MD* md, std::string_view message, std::string_view signature) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) return fail_quietly();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pkey) != 1) return fail_quietly();
  if (EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(message), message.size()) != 1)
    return fail_quietly();
  return true;
}

}  // namespace

bool ed25519_verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  if (public_key.size() != 32 || signature.size() != 64) return false;
  ossl::Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(public_key), public_key.size()));
  if (!pkey) return fail_quietly();
  // Pure Ed25519: the digest must be NULL (PROVIDERS §3).
  return digest_verify(pkey.get(), nullptr, message, signature);
}

bool rs256_verify_jwk(std::string_view n, std::string_view e, std::string_view message, std::string_view signature) {
  // Refuse toy moduli; Google's keys are 2048-bit.
  if (n.size() < 256 || n.size() > 1024 || e.empty() || e.size() > 8) return false;
  if (signature.size() != n.size()) return false;
  Bn bn_n(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
  Bn bn_e(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) return fail_quietly();
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    return fail_quietly();
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return fail_quietly();
  ossl::PkeyCtx kctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!kctx || EVP_PKEY_fromdata_init(kctx.get()) != 1) return fail_quietly();
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(kctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return fail_quietly();
  ossl::Pkey pkey(raw);
  // EVP_DigestVerify with an RSA key defaults to PKCS#1 v1.5 padding: exactly RS256.
  return digest_verify(pkey.get(), EVP_sha256(), message, signature);
}

}  // namespace alumia::crypto
