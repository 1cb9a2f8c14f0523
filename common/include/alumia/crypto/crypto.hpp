#pragma once
// Cryptographic primitives over OpenSSL 3. Every function drains the OpenSSL error queue into the
// returned Error on failure.
#include <alumia/base/encoding.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace alumia::crypto {

// Digests and MACs; outputs are raw bytes.
std::string sha256(std::string_view data);
std::string sha1(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha1(std::string_view key, std::string_view data);

// Constant-time comparison of equal-length buffers (false on length mismatch, which is not secret).
bool equal_ct(std::string_view a, std::string_view b);
// Token comparison that does not leak the length: compares SHA-256 of both (PROVIDERS §0.3).
bool token_equal_ct(std::string_view received, std::string_view expected);

// AES-256-GCM. Output of seal: nonce(12) || ciphertext || tag(16). `aad` binds the value to its row.
Result<std::string> aes_gcm_seal(const SecretBytes& key, std::string_view plaintext, std::string_view aad,
                                 const unsigned char nonce[12]);
Result<SecretBytes> aes_gcm_open(const SecretBytes& key, std::string_view sealed, std::string_view aad);

// Ed25519 signature check with a raw 32-byte public key and 64-byte signature.
bool ed25519_verify(std::string_view public_key, std::string_view message, std::string_view signature);

// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) check with an RSA key given as JWK modulus/exponent
// (raw big-endian bytes, already base64url-decoded).
bool rs256_verify_jwk(std::string_view n, std::string_view e, std::string_view message, std::string_view signature);

}  // namespace alumia::crypto
