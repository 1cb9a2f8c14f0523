// rotate-master: master_key_rotation.hpp.
#include "master_key_rotation.hpp"

#include "keyring_helper.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/sealer.hpp>

#include <spdlog/spdlog.h>

#include <mutex>

namespace alumia::daemon {
namespace {

std::mutex g_rotation;  // one rotation at a time

std::string location_of(KeyringMode backend, const MasterKeyPlace& place) {
  if (backend == KeyringMode::secret_service) return SecretServiceStore(place.store_id()).location();
  return FileKeyStore(place.file()).location();
}

// Opens every sealed value of the store with the data key; names the first few that do not.
Result<std::size_t> check_every_secret(Store& store, const SecretBytes& data_key, Random& random) {
  const Sealer sealer(data_key, random);
  const auto secrets = TRY(store.list_all_secrets());
  std::vector<std::string> failed;
  std::size_t failures = 0;
  for (const auto& s : secrets) {
    if (sealer.open(s.value.blob, s.table, s.row_id, s.value.field)) continue;
    ++failures;
    if (failed.size() < 5) failed.push_back(s.table + " " + s.row_id + " " + s.value.field);
  }
  if (failures == 0) return secrets.size();
  std::string names;
  for (const auto& f : failed) names += (names.empty() ? "" : ", ") + f;
  return fail(ErrorCode::conflict,
              std::to_string(failures) + " of " + std::to_string(secrets.size()) +
                  " sealed values do not open with the data key (" + names + (failures > failed.size() ? ", …" : "") +
                  "); nothing was changed. Delete or re-enter the connections, OAuth clients or webhook endpoints "
                  "named, then rotate again");
}

}  // namespace

Result<RotateMasterResult> rotate_master_key(const RotateMasterDeps& deps, const RotateMasterRequest& request) {
  const std::lock_guard lock(g_rotation);
  // Other daemons of a shared store: held to the end (master_key_rotation.hpp). Taken before anything is
  // read, so a rotation that waited starts from the key and the wrapping the previous one left.
  const auto store_lock = TRY(deps.store.lock_connection(k_master_key_lock));
  const auto wrapped = TRY(deps.store.get_meta(k_wrapped_data_key_meta));
  if (!wrapped)
    return fail(ErrorCode::conflict, "the store holds no wrapped data key yet; start the daemon once first");
  MasterKeyOptions options;
  options.create_if_missing = false;
  const MasterKey current = TRY(open_master_key_isolated(deps.mode, deps.place, deps.random, options));
  auto data_key = unwrap_data_key(current.key, *wrapped);
  if (!data_key)
    return fail(ErrorCode::internal,
                "the current master key (" + current.location + ") does not open the data key; nothing was changed");

  RotateMasterResult result;
  result.dry_run = request.dry_run;
  result.from_backend = std::string(format_keyring_mode(current.backend));
  result.from_location = current.location;
  const KeyringMode target = request.to.value_or(current.backend);
  result.to_backend = std::string(format_keyring_mode(target));
  result.to_location = location_of(target, deps.place);
  if (target != current.backend && deps.place.named())
    return fail(ErrorCode::conflict,
                "the master key is at the place the master-key-file / master-key-name settings name, where every "
                "daemon of the store reads it, so it is not moved to " +
                    result.to_location +
                    "; nothing was changed. Rotate it where it is (without --to), or move it by hand with every "
                    "daemon stopped (docs/SCALE-OUT.md)");
  result.secrets_checked = TRY(check_every_secret(deps.store, *data_key, deps.random));
  if (target == KeyringMode::secret_service && !SecretServiceStore::session_bus_configured())
    return fail(ErrorCode::service_unavailable,
                "no Secret Service: DBUS_SESSION_BUS_ADDRESS is not set in the daemon's environment; nothing was "
                "changed. Start the daemon in a session with a Secret Service, or rotate within the file backend");
  if (target != current.backend && deps.mode != KeyringMode::auto_ && deps.mode != target)
    result.warnings.push_back("the daemon runs with --keyring " + std::string(format_keyring_mode(deps.mode)) +
                              "; start it with --keyring " + result.to_backend +
                              " (or auto) from now on, or it will not find the new master key");
  if (request.dry_run) return result;

  const SecretBytes next_master = generate_key(deps.random);
  const std::string next_wrapped = TRY(wrap_data_key(next_master, *data_key, deps.random));
  TRY(deps.store.update_meta({{std::string(k_next_wrapped_data_key_meta), next_wrapped}}));
  if (auto saved = save_master_key_isolated(target, deps.place, next_master); !saved) {
    (void)deps.store.update_meta({{std::string(k_next_wrapped_data_key_meta), std::nullopt}});
    return fail(saved.error().code, "cannot save the new master key to " + result.to_location + ": " +
                                        saved.error().message + "; nothing was changed");
  }
  if (auto swapped = deps.store.update_meta({{std::string(k_wrapped_data_key_meta), next_wrapped},
                                             {std::string(k_next_wrapped_data_key_meta), std::nullopt}});
      !swapped)
    return fail(ErrorCode::internal, "the new master key is saved but the store could not take its wrapping (" +
                                         swapped.error().message +
                                         "); restart the daemon: it finishes the rotation at start");
  if (target != current.backend) {
    if (auto erased = erase_master_key_isolated(current.backend, deps.place); !erased)
      result.warnings.push_back("the old master key could not be removed from " + current.location + " (" +
                                erased.error().message + "); it no longer opens anything: remove it by hand");
  }
  spdlog::info("master key rotated: {} -> {}; the data key is wrapped by the new key ({} sealed values checked)",
               result.from_location, result.to_location, result.secrets_checked);
  return result;
}

Result<std::optional<SecretBytes>> finish_interrupted_rotation(Store& store, const SecretBytes& master) {
  const auto next = TRY(store.get_meta(k_next_wrapped_data_key_meta));
  if (!next) return std::optional<SecretBytes>{};
  auto data_key = unwrap_data_key(master, *next);
  if (!data_key) return std::optional<SecretBytes>{};
  TRY(store.update_meta(
      {{std::string(k_wrapped_data_key_meta), *next}, {std::string(k_next_wrapped_data_key_meta), std::nullopt}}));
  spdlog::warn("finished a master-key rotation that was interrupted: the data key is wrapped by the new key");
  return std::optional<SecretBytes>(std::move(*data_key));
}

}  // namespace alumia::daemon
