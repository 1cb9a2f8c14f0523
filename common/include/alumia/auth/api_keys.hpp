#pragma once
// Callers and their API keys (SPEC §2): the key format, authentication of a Bearer key, the local
// owner's first key, and key management. Only hashes are stored; no SQL here (the Store speaks it).
#include <alumia/auth/auth_failures.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/store/domain.hpp>
#include <alumia/store/store.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia {

// Key format: alm_<env>_<48 lowercase hex>.
bool is_well_formed_api_key(std::string_view key);
std::string api_key_prefix(std::string_view key);  // alm_live_ + first 4 hex
bool is_uuid(std::string_view s);

struct Caller {
  User user;
  ApiKeyRecord key;  // the key used (id empty when authenticated otherwise, e.g. by a ticket)
};

// POST /api/v1/api-keys, as the handler parsed it.
struct CreateApiKey {
  std::string name;                                // empty: "unnamed"
  std::optional<std::vector<std::string>> scopes;  // scope names; absent: connections only
};

struct KeyServiceDeps {
  Store& store;
  const Clock& clock;
  Random& random;
  std::string key_env = "live";       // live | test
  AuthFailurePolicy auth_failures{};  // failed authentication per client (auth_failures.hpp)
};

class KeyService {
 public:
  explicit KeyService(KeyServiceDeps deps) : m_d(std::move(deps)), m_failures(m_d.auth_failures) {}

  // Failed authentication per client: the daemon asks before authenticating and records each refusal
  // of a presented key (auth_failures.hpp).
  AuthFailureLimiter& auth_failures() { return m_failures; }

  // First start: the local owner with all scopes and its key. Returns the plaintext key when one
  // was created (to be written to the key file), nullopt when the owner already existed.
  Result<std::optional<std::string>> bootstrap_owner();
  // Issues a fresh key (e.g. the owner's when the key file was lost): returns its plaintext.
  Result<std::string> issue_key(const std::string& user_id, const std::string& name, unsigned scopes);

  Result<Caller> authenticate(const std::optional<std::string>& authorization);

  Result<std::vector<ApiKeyRecord>> list_api_keys(const Caller& caller);
  // The new key's record and its plaintext (shown once). A key grants only scopes its creator holds.
  Result<std::pair<ApiKeyRecord, std::string>> create_api_key(const Caller& caller, const CreateApiKey& request);
  // A key never revokes a key holding a scope it lacks (FORBIDDEN), and revokes itself only while
  // another active key of its user holds every scope it holds (CONFLICT): the user never loses a
  // scope, key management included, through the API.
  Status revoke_api_key(const Caller& caller, std::string_view id);

 private:
  KeyServiceDeps m_d;
  std::mutex m_touch_mutex;
  std::map<std::string, int64_t> m_last_touch;  // key id → last persisted lastUsedAt
  std::mutex m_revoke_mutex;                    // one revoke at a time: two keys revoking themselves leave one
  AuthFailureLimiter m_failures;
};

}  // namespace alumia
