#pragma once
// Envelope encryption of secrets at rest (SPEC §11, OAUTH 26). Values are sealed with a random
// 32-byte data key under AES-256-GCM with AAD = table '\0' row id '\0' field, so a ciphertext moved
// to another row, field or table fails to open. The data key is stored wrapped by the master key.
//
// Blob format (text, fits a TEXT column): "v1:" + base64(nonce(12) || ciphertext || tag(16)).
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace alumia {

class Random;

inline constexpr std::size_t k_data_key_size = 32;
inline constexpr std::string_view k_sealed_prefix = "v1:";
inline constexpr std::string_view k_data_key_aad = "alumia-data-key-v1";

// A fresh 32-byte key (data key or master key) from the injected randomness.
SecretBytes generate_key(Random& random);

// table '\0' row_id '\0' field. Fails if a part contains '\0' (it would make the AAD ambiguous).
Result<std::string> sealing_aad(std::string_view table, std::string_view row_id, std::string_view field);

class Sealer {
 public:
  // `data_key` must be k_data_key_size bytes (seal/open fail otherwise). `random` must outlive this.
  Sealer(SecretBytes data_key, Random& random);

  Result<std::string> seal(std::string_view plaintext, std::string_view table, std::string_view row_id,
                           std::string_view field) const;
  // Wrong key, wrong table/row/field, or a tampered/truncated blob: ErrorCode::internal, with a
  // message that names the table, field and row but no secret.
  Result<SecretBytes> open(std::string_view blob, std::string_view table, std::string_view row_id,
                           std::string_view field) const;

 private:
  SecretBytes m_key;
  Random* m_random;
};

// The data key under the master key: same blob format, AAD k_data_key_aad, fresh nonce.
Result<std::string> wrap_data_key(const SecretBytes& master, const SecretBytes& data_key, Random& random);
Result<SecretBytes> unwrap_data_key(const SecretBytes& master, std::string_view wrapped);

}  // namespace alumia
