#pragma once
// The master key (SPEC §11): 32 random bytes that wrap the store's data key. It lives in the
// Secret Service through libsecret, or — where no Secret Service answers — in a 0600 file next to
// the store. Every keyring call is bounded by a timeout: a hung keyring must not hang the daemon.
// The settings master-key-file and master-key-name put it elsewhere (MasterKeyPlace): one key file or
// Secret Service item that the daemons of one PostgreSQL store share (docs/SCALE-OUT.md).
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace alumia {

class Random;

// --keyring auto|secret-service|file
enum class KeyringMode { auto_, secret_service, file };
std::optional<KeyringMode> parse_keyring_mode(std::string_view text);
std::string_view format_keyring_mode(KeyringMode mode);  // "auto", "secret-service", "file"

inline constexpr std::size_t k_master_key_size = 32;
inline constexpr std::chrono::milliseconds k_keyring_timeout{5000};
inline constexpr std::string_view k_master_key_schema = "com.alumia.connect.MasterKey";
// Attribute of the schema that tells stores apart: the absolute data directory.
inline constexpr std::string_view k_master_key_store_attribute = "store";
inline constexpr std::string_view k_master_key_file_name = "master.key";

// Where a master key is kept.
class MasterKeyStore {
 public:
  virtual ~MasterKeyStore() = default;
  // nullopt: no key has been stored yet. An error: the backend failed, timed out or holds junk.
  virtual Result<std::optional<SecretBytes>> load() = 0;
  // Stores `key`, replacing any previous one (rotate-master).
  virtual Status save(const SecretBytes& key) = 0;
  virtual std::string_view backend_name() const = 0;  // "secret-service" or "file"
  // For doctor / daemon status / the log, e.g. "file '/home/u/.local/share/alumia-connect/master.key'".
  virtual std::string location() const = 0;
};

// libsecret. Each call runs on a worker thread with a deadline; on timeout the call is cancelled
// and the caller gets ErrorCode::service_unavailable (the worker is abandoned if it stays stuck).
class SecretServiceStore final : public MasterKeyStore {
 public:
  explicit SecretServiceStore(std::string store_id, std::chrono::milliseconds timeout = k_keyring_timeout);

  // DBUS_SESSION_BUS_ADDRESS is set and non-empty. Without it the Secret Service is "not available"
  // and no call is attempted (GDBus would otherwise try to autolaunch a bus).
  static bool session_bus_configured();

  // A bounded round trip: connects and opens a session with the service.
  Status probe();
  Result<std::optional<SecretBytes>> load() override;
  Status save(const SecretBytes& key) override;
  // Removes this store's item; succeeds if there was none.
  Status erase();

  std::string_view backend_name() const override { return "secret-service"; }
  std::string location() const override;
  const std::string& store_id() const { return m_store_id; }

 private:
  std::string m_store_id;
  std::chrono::milliseconds m_timeout;
};

// A key file holding the base64 key and a newline: created 0600 at open() time and renamed into
// place; refused on load if it is a symlink, not ours, or readable by group/other.
class FileKeyStore final : public MasterKeyStore {
 public:
  explicit FileKeyStore(std::filesystem::path file);

  Result<std::optional<SecretBytes>> load() override;
  Status save(const SecretBytes& key) override;
  // First-use creation: fails with ErrorCode::conflict, instead of replacing, if the file exists.
  Status create(const SecretBytes& key);

  std::string_view backend_name() const override { return "file"; }
  std::string location() const override;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

// The identity of a store in the keyring: the absolute, normalized data directory.
std::string master_key_store_id(const std::filesystem::path& data_dir);
// DATA_DIR/master.key
std::filesystem::path master_key_file(const std::filesystem::path& data_dir);

// Where a store's master key is kept. By default it belongs to the data directory: the file
// DATA_DIR/master.key, and the Secret Service item whose `store` attribute is the data directory.
// The settings name a place outside it instead, which several daemons share: `key_file` (the
// master-key-file setting, an absolute path; its directory must exist) and `name` (master-key-name:
// the item's `store` attribute). Whichever daemon comes first creates the key there; a file is created
// with RENAME_NOREPLACE (never replaced), so of daemons starting together one key wins and the others
// read it. A key at a named place belongs to one store: rotate-master replaces it there.
struct MasterKeyPlace {
  std::filesystem::path data_dir;
  std::filesystem::path key_file;  // empty: master_key_file(data_dir)
  std::string name;                // empty: master_key_store_id(data_dir)

  std::filesystem::path file() const { return key_file.empty() ? master_key_file(data_dir) : key_file; }
  std::string store_id() const { return name.empty() ? master_key_store_id(data_dir) : name; }
  // A setting names the key's place: it is shared, so it is not moved between backends.
  bool named() const { return !key_file.empty() || !name.empty(); }
};

// A master-key-file setting's value: an absolute path that is not a directory (relative paths would
// depend on the daemon's working directory). Empty passes (the default place).
Status check_master_key_file_setting(const std::filesystem::path& file);

struct MasterKeyOptions {
  std::chrono::milliseconds timeout = k_keyring_timeout;  // per keyring call
  // Pass false once the store holds a wrapped data key: then a key that cannot be found is an
  // error, never a reason to make a new one (which would orphan every sealed secret).
  bool create_if_missing = true;
};

struct MasterKey {
  SecretBytes key;                          // k_master_key_size bytes
  KeyringMode backend = KeyringMode::file;  // secret_service or file, never auto_
  std::string location;                     // store->location(), for doctor / daemon status / the log
  // Non-empty when auto fell back to the key file: log it at warning level and show it in
  // `doctor` and `daemon status`.
  std::string fallback_warning;
  bool created = false;  // a new key was generated by this call (first use)
  // Where the key lives; rotate-master saves the new key here once the data key is re-wrapped.
  std::unique_ptr<MasterKeyStore> store;
};

// auto: the Secret Service if DBUS_SESSION_BUS_ADDRESS is set and it answers in time, else the key
// file with fallback_warning set. An existing key is always preferred to a new one: the Secret
// Service item first, then the file. secret-service: the Secret Service or a clear error. file: the
// key file. A missing key is generated from `random` (when options.create_if_missing).
// `place.data_dir` is created 0700 if missing.
Result<MasterKey> open_master_key(KeyringMode mode, const MasterKeyPlace& place, Random& random,
                                  const MasterKeyOptions& options = {});
// The default place of `data_dir`.
inline Result<MasterKey> open_master_key(KeyringMode mode, const std::filesystem::path& data_dir, Random& random,
                                         const MasterKeyOptions& options = {}) {
  return open_master_key(mode, MasterKeyPlace{.data_dir = data_dir, .key_file = {}, .name = {}}, random, options);
}

}  // namespace alumia
