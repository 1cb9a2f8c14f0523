#pragma once
// The master key from the Secret Service, read in a short-lived child process (issue 13 item 5).
//
// libsecret brings GLib, GObject, GIO and their GDBus threads: ~4.8 MB of resident memory and three
// threads for the daemon's whole life, for one lookup at start. So when the Secret Service may be
// used (any --keyring but file, with a session bus), the daemon runs itself again
// (/proc/self/exe --keyring-helper=open|create, a hidden option) and that child, not the daemon, calls
// open_master_key() and writes the result to a pipe: the daemon never maps libsecret.
//
// The key crosses an anonymous pipe between the daemon and its own child (same binary, same user, both
// not dumpable): never argv, the environment or a file; the buffers are wiped. The child gets the
// data directory, the mode and the key's place (--master-key-file, --master-key-name) in argv (not secret) and the
// environment as is (the session bus address). Its keyring calls are bounded as in-process ones are (auto falls back to
// the key file in the child, with the same warning); a child still silent at a deadline past their sum is killed and
// the start fails. Without a session bus nothing can reach libsecret, so the key (file) is read
// in-process as before; so it is, with a warning, when the child cannot be started (no /proc).
//
// Frame on the pipe: 'K', backend (0 file, 1 secret-service), created (0/1), the key
// (k_master_key_size bytes), then location and fallback warning, each a 4-byte length and bytes;
// or 'E', the error code (4 bytes), the message (length and bytes).
#include <alumia/crypto/keyring.hpp>

#include <string_view>

namespace alumia::daemon {

// open_master_key(), in the child when it may load libsecret; in-process otherwise.
Result<MasterKey> open_master_key_isolated(KeyringMode mode, const MasterKeyPlace& place, Random& random,
                                           const MasterKeyOptions& options);

// rotate-master (SPEC §11): the new master key saved to `backend`, or this store's key erased from it
// once the data key is wrapped by a key elsewhere. The Secret Service through the same child
// (`--keyring-helper=save|erase`; save reads the key from its stdin pipe and answers 'O' or the 'E'
// frame), the key file in-process.
Status save_master_key_isolated(KeyringMode backend, const MasterKeyPlace& place, const SecretBytes& key);
Status erase_master_key_isolated(KeyringMode backend, const MasterKeyPlace& place);

// The child's side: `--keyring-helper=open|create|save|erase --keyring MODE --data-dir DIR
// [--master-key-file F] [--master-key-name N]`; writes the frame to stdout. Returns the exit status.
int keyring_helper_main(std::string_view op, KeyringMode mode, const MasterKeyPlace& place);

}  // namespace alumia::daemon
