#include <alumia/crypto/sealer.hpp>

#include <alumia/base/clock.hpp>
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

#include <array>
#include <optional>
#include <utility>

namespace alumia {
namespace {

constexpr std::size_t k_nonce_size = 12;
constexpr std::size_t k_tag_size = 16;

Result<std::string> seal_blob(const SecretBytes& key, std::string_view plaintext, std::string_view aad,
                              Random& random) {
  std::array<unsigned char, k_nonce_size> nonce{};
  random.fill(nonce.data(), nonce.size());
  auto sealed = TRY(crypto::aes_gcm_seal(key, plaintext, aad, nonce.data()));
  std::string blob = std::string(k_sealed_prefix) + encoding::base64_encode(sealed);
  return blob;
}

// Decodes "v1:" + base64 into nonce || ciphertext || tag; nullopt if it cannot be one.
std::optional<std::string> decode_blob(std::string_view blob) {
  if (!blob.starts_with(k_sealed_prefix)) return std::nullopt;
  auto raw = encoding::base64_decode(blob.substr(k_sealed_prefix.size()));
  if (!raw || raw->size() < k_nonce_size + k_tag_size) return std::nullopt;
  return raw;
}

}  // namespace

SecretBytes generate_key(Random& random) {
  SecretBytes key(k_data_key_size);
  random.fill(key.data(), key.size());
  return key;
}

Result<std::string> sealing_aad(std::string_view table, std::string_view row_id, std::string_view field) {
  for (std::string_view part : {table, row_id, field}) {
    if (part.find('\0') != std::string_view::npos)
      return fail(ErrorCode::internal, "sealing: table, row id and field must not contain NUL");
  }
  std::string aad;
  aad.reserve(table.size() + row_id.size() + field.size() + 2);
  aad.append(table).push_back('\0');
  aad.append(row_id).push_back('\0');
  aad.append(field);
  return aad;
}

Sealer::Sealer(SecretBytes data_key, Random& random) : m_key(std::move(data_key)), m_random(&random) {}

Result<std::string> Sealer::seal(std::string_view plaintext, std::string_view table, std::string_view row_id,
                                 std::string_view field) const {
  if (m_key.size() != k_data_key_size)
    return fail(ErrorCode::internal, "sealing: the data key is not " + std::to_string(k_data_key_size) + " bytes");
  auto aad = TRY(sealing_aad(table, row_id, field));
  return seal_blob(m_key, plaintext, aad, *m_random);
}

Result<SecretBytes> Sealer::open(std::string_view blob, std::string_view table, std::string_view row_id,
                                 std::string_view field) const {
  const std::string what = std::string(table) + "." + std::string(field) + " of row " + std::string(row_id);
  if (m_key.size() != k_data_key_size)
    return fail(ErrorCode::internal,
                "cannot decrypt " + what + ": the data key is not " + std::to_string(k_data_key_size) + " bytes");
  auto aad = TRY(sealing_aad(table, row_id, field));
  auto raw = decode_blob(blob);
  if (!raw) return fail(ErrorCode::internal, "cannot decrypt " + what + ": not a v1 sealed value");
  auto opened = crypto::aes_gcm_open(m_key, *raw, aad);
  if (!opened)
    return fail(ErrorCode::internal,
                "cannot decrypt " + what + ": wrong key, or the value was altered or moved from another row");
  return opened;
}

Result<std::string> wrap_data_key(const SecretBytes& master, const SecretBytes& data_key, Random& random) {
  if (master.size() != k_data_key_size || data_key.size() != k_data_key_size)
    return fail(ErrorCode::internal,
                "wrapping the data key: master and data keys must be " + std::to_string(k_data_key_size) + " bytes");
  return seal_blob(master, data_key.view(), k_data_key_aad, random);
}

Result<SecretBytes> unwrap_data_key(const SecretBytes& master, std::string_view wrapped) {
  if (master.size() != k_data_key_size)
    return fail(ErrorCode::internal,
                "cannot unwrap the data key: the master key is not " + std::to_string(k_data_key_size) + " bytes");
  auto raw = decode_blob(wrapped);
  if (!raw) return fail(ErrorCode::internal, "cannot unwrap the data key: not a v1 wrapped key");
  auto opened = crypto::aes_gcm_open(master, *raw, k_data_key_aad);
  if (!opened)
    return fail(ErrorCode::internal,
                "cannot unwrap the data key: the master key does not match this store (was the keyring "
                "entry or key file replaced?)");
  if (opened->size() != k_data_key_size)
    return fail(ErrorCode::internal, "cannot unwrap the data key: it has the wrong length");
  return opened;
}

}  // namespace alumia
