#include <alumia/auth/api_keys.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/text.hpp>
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

#include <algorithm>
#include <regex>

namespace alumia {
namespace {

constexpr int64_t k_touch_interval_ms = 60 * 1000;

}  // namespace

bool is_well_formed_api_key(std::string_view key) {
  static const std::regex k_re("^alm_(live|test)_[0-9a-f]{48}$");
  return std::regex_match(key.begin(), key.end(), k_re);
}

std::string api_key_prefix(std::string_view key) {
  const auto us = key.find('_', 4);
  if (us == std::string_view::npos) return std::string(key.substr(0, 8));
  return std::string(key.substr(0, std::min(key.size(), us + 1 + 4)));
}

bool is_uuid(std::string_view s) {  // 8-4-4-4-12 lowercase hex (on the receiver's hot path: no regex)
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<std::string> KeyService::issue_key(const std::string& user_id, const std::string& name, unsigned scopes) {
  std::string plain = "alm_" + m_d.key_env + "_" + m_d.random.hex(24);
  ApiKeyRecord k;
  k.id = m_d.random.uuid_v4();
  k.user_id = user_id;
  k.name = name;
  k.prefix = api_key_prefix(plain);
  k.hash = crypto::sha256(plain);
  k.scopes = scopes;
  k.created_at = m_d.clock.now_ms();
  TRY(m_d.store.insert_api_key(k));
  return plain;
}

Result<std::optional<std::string>> KeyService::bootstrap_owner() {
  auto owner = TRY(m_d.store.first_user());
  if (owner) return std::optional<std::string>();
  // Several daemons may start together on one shared store: the store creates the owner once (a
  // constraint, not this check), and the daemons that lost the race find it made.
  User u{m_d.random.uuid_v4(), "owner", m_d.clock.now_ms()};
  if (!TRY(m_d.store.insert_owner(u))) return std::optional<std::string>();
  auto key = TRY(issue_key(u.id, "owner (local key file)", k_all_scopes));
  return std::optional<std::string>(key);
}

Result<Caller> KeyService::authenticate(const std::optional<std::string>& authorization) {
  const std::string how = " — send 'Authorization: Bearer alm_" + m_d.key_env +
                          "_…' (the CLI reads the key file automatically; ALUMIA_API_KEY overrides it)";
  if (!authorization) return fail(ErrorCode::unauthorized, "missing API key" + how);
  std::string_view v = *authorization;
  if (v.size() < 7 || !iequals(v.substr(0, 7), "bearer "))
    return fail(ErrorCode::unauthorized, "the Authorization header is not a Bearer key" + how);
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (!is_well_formed_api_key(v)) return fail(ErrorCode::unauthorized, "malformed API key" + how);
  if (v.substr(4, m_d.key_env.size()) != m_d.key_env)
    return fail(ErrorCode::unauthorized,
                "this daemon runs with --env " + m_d.key_env + " and takes only alm_" + m_d.key_env + "_ keys");
  const std::string hash = crypto::sha256(v);
  auto rec = TRY(m_d.store.find_api_key_by_hash(hash));
  if (!rec || !crypto::equal_ct(rec->hash, hash)) return fail(ErrorCode::unauthorized, "invalid API key" + how);
  if (rec->revoked_at)
    return fail(ErrorCode::unauthorized,
                "this API key was revoked; create a new one with `alumia-connect keys create`");
  auto user = TRY(m_d.store.find_user(rec->user_id));
  if (!user) return fail(ErrorCode::unauthorized, "the key's user no longer exists");
  const int64_t now = m_d.clock.now_ms();
  bool touch = false;
  {
    std::lock_guard lock(m_touch_mutex);
    auto& last = m_last_touch[rec->id];
    if (now - last >= k_touch_interval_ms) {
      last = now;
      touch = true;
    }
  }
  if (touch) {
    (void)m_d.store.touch_api_key(rec->id, now);
    rec->last_used_at = now;
  }
  return Caller{*user, *rec};
}

Result<std::vector<ApiKeyRecord>> KeyService::list_api_keys(const Caller& caller) {
  return m_d.store.list_api_keys(caller.user.id);
}

Result<std::pair<ApiKeyRecord, std::string>> KeyService::create_api_key(const Caller& caller,
                                                                        const CreateApiKey& request) {
  const std::string& name = request.name;
  TRY(check_no_control_characters(name, "name"));
  if (name.size() > 100) return fail(ErrorCode::validation_error, "name must be at most 100 characters");
  unsigned scopes = static_cast<unsigned>(Scope::connections);
  if (request.scopes) {
    scopes = 0;
    for (const auto& s : *request.scopes) {
      auto sc = parse_scope(s);
      if (!sc)
        return fail(ErrorCode::validation_error, "unknown scope '" + s + "' (connections, tokens, webhooks, admin)");
      scopes |= static_cast<unsigned>(*sc);
    }
    if (scopes == 0) return fail(ErrorCode::validation_error, "a key needs at least one scope");
  }
  // A key cannot grant more than its creator holds.
  if ((scopes & ~caller.key.scopes) != 0)
    return fail(ErrorCode::forbidden, "a key can only grant scopes its creator holds");
  auto plain = TRY(issue_key(caller.user.id, name.empty() ? "unnamed" : name, scopes));
  auto rec = TRY(m_d.store.find_api_key_by_hash(crypto::sha256(plain)));
  if (!rec) return fail(ErrorCode::internal, "the new key was not stored");
  return std::make_pair(*rec, plain);
}

Status KeyService::revoke_api_key(const Caller& caller, std::string_view id) {
  // Spelled with append: GCC 12 at -O3 flags `"'" + std::string(id)` with a false -Wrestrict (bug 105329).
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, std::string("'").append(id).append("' is not a key id (UUID)"));
  auto rec = TRY(m_d.store.find_api_key(id));
  if (!rec || rec->user_id != caller.user.id) return fail(ErrorCode::not_found, "no API key " + std::string(id));
  const ApiKeyRecord& target = *rec;
  if (const unsigned lacking = target.scopes & ~caller.key.scopes; lacking != 0) {
    std::string names;
    for (const auto& n : scope_names(lacking)) names += (names.empty() ? "'" : "', '") + n;
    return fail(ErrorCode::forbidden, "API key " + std::string(id) + " holds " + names +
                                          "', which this key lacks; revoke it with a key that holds every scope it "
                                          "holds (the owner key in the key file holds all)");
  }
  std::lock_guard lock(m_revoke_mutex);
  if (target.id == caller.key.id) {
    // Revoking itself: another active key must keep every scope this one holds, or the user would
    // lose it (and, for admin, key management) until the key file is deleted and the daemon restarted.
    auto keys = TRY(m_d.store.list_api_keys(caller.user.id));
    const bool covered = std::ranges::any_of(keys, [&](const ApiKeyRecord& k) {
      return k.id != target.id && !k.revoked_at && (target.scopes & ~k.scopes) == 0;
    });
    if (!covered) {
      std::string how;
      for (const auto& n : scope_names(target.scopes)) how += " --scope " + n;
      return fail(ErrorCode::conflict, "API key " + std::string(id) +
                                           " is the only key holding all of its scopes and cannot revoke itself; "
                                           "create its replacement first (`alumia-connect keys create" +
                                           how + "`), then revoke it");
    }
  }
  auto changed = TRY(m_d.store.revoke_api_key(id, m_d.clock.now_ms()));
  if (!changed) return fail(ErrorCode::conflict, "API key " + std::string(id) + " is already revoked");
  return {};
}

}  // namespace alumia
