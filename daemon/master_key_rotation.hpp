#pragma once
// rotate-master (SPEC §11, `alumia-connect keys rotate-master`): a new master key wraps the same data
// key, so no sealed value is rewritten; optionally the key moves between the Secret Service and the
// key file.
//
// The steps, each safe to be interrupted:
//  1. the current master key is read as at start and unwraps the stored data key; every sealed value
//     of the store is opened with it. One that does not open aborts the rotation with nothing changed
//     (a dry run stops here and reports what it checked);
//  2. a new master key wraps the data key, kept as meta `data_key.wrapped.next` (the current wrapping
//     still rules);
//  3. the new key is saved to the target backend (replacing the old one in the same backend);
//  4. one transaction makes `.next` the wrapping and drops it, and the WAL is checkpointed;
//  5. when the key moved, the old backend's copy is erased.
// A crash between 3 and 4 leaves the new key with the `.next` wrapping: the next start finishes the
// rotation (finish_interrupted_rotation). A crash before 3 leaves the old key in force.
//
// Several daemons on one PostgreSQL store (docs/SCALE-OUT.md): the whole rotation holds the store's
// lock k_master_key_lock, so rotations on two daemons run one after the other — the second reads the
// key the first saved — and never interleave (which could leave the store wrapped by a key the shared
// place no longer holds). A daemon starting meanwhile whose key does not open the wrapping waits on the
// same lock and reads both again. The other daemons keep the data key they hold and read the new master
// key from the shared place at their next start. A key at a named place (master-key-file,
// master-key-name) stays in its backend: `to` another one is refused, because every daemon of the store
// reads it there.
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/crypto/keyring.hpp>
#include <alumia/store/store.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace alumia::daemon {

inline constexpr std::string_view k_wrapped_data_key_meta = "data_key.wrapped";
inline constexpr std::string_view k_next_wrapped_data_key_meta = "data_key.wrapped.next";
// The store lock (Store::lock_connection) held by a rotation, and by a start that must wait for one.
inline constexpr std::string_view k_master_key_lock = "alumia:master-key-rotation";

struct RotateMasterRequest {
  bool dry_run = false;
  std::optional<KeyringMode> to;  // secret_service or file; nullopt: the backend the key is in now
};

struct RotateMasterResult {
  bool dry_run = false;
  std::size_t secrets_checked = 0;  // sealed values opened with the data key
  std::string from_backend;         // "secret-service" or "file"
  std::string from_location;
  std::string to_backend;
  std::string to_location;
  std::vector<std::string> warnings;
};

struct RotateMasterDeps {
  Store& store;
  Random& random;
  MasterKeyPlace place;  // the data directory, and the master-key-file / master-key-name settings
  KeyringMode mode;      // the daemon's --keyring, how the current key is found
};

Result<RotateMasterResult> rotate_master_key(const RotateMasterDeps& deps, const RotateMasterRequest& request);

// At start, when the stored wrapping does not open with `master`: a `.next` wrapping that does is
// made the wrapping (step 4 of an interrupted rotation). Returns the data key, or nullopt.
Result<std::optional<SecretBytes>> finish_interrupted_rotation(Store& store, const SecretBytes& master);

}  // namespace alumia::daemon
