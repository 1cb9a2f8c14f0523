#pragma once
// Records of the domain. Times are unix milliseconds. No record carries key or token material.
#include <alumia/base/vocabulary.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia {

enum class Scope : unsigned { connections = 1, tokens = 2, webhooks = 4, admin = 8 };
inline constexpr unsigned k_all_scopes = 15;
std::optional<Scope> parse_scope(std::string_view s);
std::string_view to_string(Scope s);
std::vector<std::string> scope_names(unsigned mask);
inline bool has_scope(unsigned mask, Scope s) { return (mask & static_cast<unsigned>(s)) != 0; }

struct User {
  std::string id;
  std::string name;
  int64_t created_at = 0;
};

struct ApiKeyRecord {
  std::string id;
  std::string user_id;
  std::string name;
  std::string prefix;  // alm_live_ + first 4 hex, for display
  std::string hash;    // SHA-256 of the whole key, raw bytes
  unsigned scopes = static_cast<unsigned>(Scope::connections);
  int64_t created_at = 0;
  std::optional<int64_t> last_used_at;
  std::optional<int64_t> revoked_at;
};

enum class ConnectionStatus { pending, active, error, expired, revoked };
std::string_view to_string(ConnectionStatus s);
std::optional<ConnectionStatus> parse_connection_status(std::string_view s);

struct ConnectionError {
  std::string code;
  std::string message;
};

struct Connection {
  std::string id;
  std::string user_id;
  std::string connector_slug;
  std::string label;
  AuthType auth_type = AuthType::none;
  ConnectionStatus status = ConnectionStatus::pending;
  std::string account_label;
  std::vector<std::string> scopes;
  std::optional<int64_t> expires_at;
  std::optional<int64_t> last_refreshed_at;
  std::optional<ConnectionError> error;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> deleted_at;
};

// A sealed value of the secrets table: AAD binds it to (table, row id, field).
struct SealedValue {
  std::string field;
  std::string blob;
};

// A sealed value with the row that owns it (its AAD): rotate-master opens each one.
struct OwnedSealedValue {
  std::string table;
  std::string row_id;
  SealedValue value;
};

struct Page {
  std::size_t limit = 50;
  std::optional<std::string> cursor;  // opaque, from a previous page
};

template <class T>
struct PageResult {
  std::vector<T> items;
  std::optional<std::string> next_cursor;
};

struct ConnectionFilter {
  std::string user_id;
  std::optional<std::string> connector;
  std::optional<ConnectionStatus> status;
};

}  // namespace alumia
