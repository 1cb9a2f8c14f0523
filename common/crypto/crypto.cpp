#include "openssl_util.hpp"

#include <alumia/crypto/crypto.hpp>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace alumia {
namespace crypto {
namespace {

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return {reinterpret_cast<char*>(out), len};
}

// HMAC (RFC 2104) over a digest fetched once. OpenSSL 3's one-shot HMAC() looks the MAC and the
// digest up by name on every call, which cost more than hashing a 1 KiB webhook body.
std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  const auto block = static_cast<std::size_t>(EVP_MD_get_block_size(md));
  std::array<unsigned char, 128> k{};  // the largest block of the digests used (SHA-256: 64)
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (key.size() > block) {
    EVP_Digest(key.data(), key.size(), k.data(), &len, md, nullptr);
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<unsigned char, 128> pad{};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  for (std::size_t i = 0; i < block; ++i) pad[i] = k[i] ^ 0x36;
  EVP_DigestInit_ex2(ctx.get(), md, nullptr);
  EVP_DigestUpdate(ctx.get(), pad.data(), block);
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  for (std::size_t i = 0; i < block; ++i) pad[i] = k[i] ^ 0x5c;
  EVP_DigestInit_ex2(ctx.get(), md, nullptr);
  EVP_DigestUpdate(ctx.get(), pad.data(), block);
  EVP_DigestUpdate(ctx.get(), out, len);
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(pad.data(), pad.size());
  return {reinterpret_cast<char*>(out), len};
}

// Digests fetched once from the default provider (EVP_sha256() would be looked up per use).
const EVP_MD* fetched(const char* name) {
  static std::mutex m;
  static std::map<std::string, EVP_MD*> cache;
  std::lock_guard lock(m);
  auto& md = cache[name];
  if (!md) md = EVP_MD_fetch(nullptr, name, nullptr);
  return md;
}
const EVP_MD* sha256_md() {
  static const EVP_MD* md = fetched("SHA256");
  return md;
}
const EVP_MD* sha1_md() {
  static const EVP_MD* md = fetched("SHA1");
  return md;
}

}  // namespace

std::string sha256(std::string_view data) { return digest(sha256_md(), data); }
std::string sha1(std::string_view data) { return digest(sha1_md(), data); }
std::string hmac_sha256(std::string_view key, std::string_view data) { return hmac(sha256_md(), key, data); }
std::string hmac_sha1(std::string_view key, std::string_view data) { return hmac(sha1_md(), key, data); }

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool token_equal_ct(std::string_view received, std::string_view expected) {
  const std::string ha = sha256(received), hb = sha256(expected);
  return CRYPTO_memcmp(ha.data(), hb.data(), ha.size()) == 0;
}

Result<std::string> aes_gcm_seal(const SecretBytes& key, std::string_view plaintext, std::string_view aad,
                                 const unsigned char nonce[12]) {
  if (key.size() != 32) return fail(ErrorCode::internal, "AES-256-GCM needs a 32-byte key");
  ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::unexpected(ossl::error("EVP_CIPHER_CTX_new"));
  std::string out(12 + plaintext.size() + 16, '\0');
  std::copy(nonce, nonce + 12, out.begin());
  int len = 0;
  auto* ct = reinterpret_cast<unsigned char*>(out.data() + 12);
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(aad), int(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, u8(plaintext), int(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, ct + plaintext.size()) != 1)
    return std::unexpected(ossl::error("AES-256-GCM seal"));
  return out;
}

Result<SecretBytes> aes_gcm_open(const SecretBytes& key, std::string_view sealed, std::string_view aad) {
  if (key.size() != 32) return fail(ErrorCode::internal, "AES-256-GCM needs a 32-byte key");
  if (sealed.size() < 12 + 16) return fail(ErrorCode::internal, "sealed value is truncated");
  const std::size_t n = sealed.size() - 28;
  ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::unexpected(ossl::error("EVP_CIPHER_CTX_new"));
  SecretBytes out(n);
  std::array<unsigned char, 16> tag{};
  std::copy(sealed.end() - 16, sealed.end(), tag.begin());
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), u8(sealed)) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(aad), int(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, u8(sealed.substr(12)), int(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) {
    ERR_clear_error();
    return fail(ErrorCode::internal, "sealed value failed authentication (tampered, moved or wrong key)");
  }
  return out;
}

}  // namespace crypto
}  // namespace alumia
