#include <alumia/crypto/keyring.hpp>

#include <alumia/base/clock.hpp>
#include <alumia/base/fs.hpp>
#include <alumia/base/shared_library.hpp>
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

// GLib/libsecret headers and macros are C: old-style casts and extensions. Only their types and
// declarations are used here: the library itself is loaded on first use (see libsecret() below).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libsecret/secret.h>
#pragma GCC diagnostic pop

namespace alumia {
namespace {

namespace fs = std::filesystem;

// After a timeout the call is cancelled; this is how long we wait for it to wind down before
// abandoning the worker thread.
constexpr std::chrono::milliseconds k_cancel_grace{250};

// libsecret (and through it GLib, GObject, GIO, libgcrypt, ...) is loaded only when a Secret Service
// call is made, never at program start: a daemon with --keyring file, or in auto mode without a
// session bus (a server), never maps those libraries, which cost ~2.2 MB of resident memory just by
// being linked (relocations and constructors), a third of the daemon's idle RSS budget (issue 13).
// Loaded once and never unloaded (GLib's type system and GDBus worker cannot be unloaded). Without
// libsecret installed, a Secret Service call fails as service_unavailable, so auto falls back to the
// key file as it does without a session bus.
struct Libsecret {
  decltype(&::secret_service_get_sync) service_get_sync;
  decltype(&::secret_password_lookupv_sync) password_lookupv_sync;
  decltype(&::secret_password_storev_sync) password_storev_sync;
  decltype(&::secret_password_clearv_sync) password_clearv_sync;
  decltype(&::secret_password_free) password_free;
  decltype(&::g_object_unref) object_unref;
  decltype(&::g_error_free) error_free;
  decltype(&::g_hash_table_new) hash_table_new;
  decltype(&::g_hash_table_insert) hash_table_insert;
  decltype(&::g_hash_table_unref) hash_table_unref;
  decltype(&::g_str_hash) str_hash;
  decltype(&::g_str_equal) str_equal;
  decltype(&::g_cancellable_new) cancellable_new;
  decltype(&::g_cancellable_cancel) cancellable_cancel;
};

constexpr const char* k_libsecret_soname = "libsecret-1.so.0";

Result<const Libsecret*> load_libsecret() {
  // GLib's symbols come through libsecret's dependencies.
  auto so = TRY(SharedLibrary::open(k_libsecret_soname, "the Secret Service client library", "libsecret-1-0"));
  static Libsecret lib{};
  so.resolve("secret_service_get_sync", lib.service_get_sync);
  so.resolve("secret_password_lookupv_sync", lib.password_lookupv_sync);
  so.resolve("secret_password_storev_sync", lib.password_storev_sync);
  so.resolve("secret_password_clearv_sync", lib.password_clearv_sync);
  so.resolve("secret_password_free", lib.password_free);
  so.resolve("g_object_unref", lib.object_unref);
  so.resolve("g_error_free", lib.error_free);
  so.resolve("g_hash_table_new", lib.hash_table_new);
  so.resolve("g_hash_table_insert", lib.hash_table_insert);
  so.resolve("g_hash_table_unref", lib.hash_table_unref);
  so.resolve("g_str_hash", lib.str_hash);
  so.resolve("g_str_equal", lib.str_equal);
  so.resolve("g_cancellable_new", lib.cancellable_new);
  so.resolve("g_cancellable_cancel", lib.cancellable_cancel);
  if (!so.missing().empty()) return std::unexpected(so.lacks("libsecret 0.18 or later is needed"));
  return &lib;
}

// Loaded at the first call, once; a failure is kept (the same answer every time, no retry storm).
Result<const Libsecret*> libsecret() {
  static const Result<const Libsecret*> loaded = load_libsecret();
  return loaded;
}

// Only reached after libsecret() succeeded.
const Libsecret& lib() { return **libsecret(); }

// RAII for GLib/libsecret objects.
struct GObjectUnref {
  void operator()(gpointer p) const { lib().object_unref(p); }
};
struct GErrorFree {
  void operator()(GError* e) const { lib().error_free(e); }
};
struct GHashTableUnref {
  void operator()(GHashTable* t) const { lib().hash_table_unref(t); }
};
struct SecretPasswordFree {  // wipes, then frees
  void operator()(gchar* p) const { lib().password_free(p); }
};
using CancellablePtr = std::unique_ptr<GCancellable, GObjectUnref>;
using ServicePtr = std::unique_ptr<SecretService, GObjectUnref>;
using GErrorPtr = std::unique_ptr<GError, GErrorFree>;
using AttributesPtr = std::unique_ptr<GHashTable, GHashTableUnref>;
using PasswordPtr = std::unique_ptr<gchar, SecretPasswordFree>;

const SecretSchema* master_key_schema() {
  static const SecretSchema schema = [] {
    SecretSchema s{};  // zeroed: attributes[1] terminates the list
    s.name = "com.alumia.connect.MasterKey";
    s.flags = SECRET_SCHEMA_NONE;
    s.attributes[0].name = "store";
    s.attributes[0].type = SECRET_SCHEMA_ATTRIBUTE_STRING;
    return s;
  }();
  return &schema;
}

// Borrowed pointers: `store_id` must outlive the table.
AttributesPtr make_attributes(const std::string& store_id) {
  AttributesPtr attrs(lib().hash_table_new(lib().str_hash, lib().str_equal));
  lib().hash_table_insert(attrs.get(), const_cast<char*>(master_key_schema()->attributes[0].name),
                          const_cast<char*>(store_id.c_str()));
  return attrs;
}

std::string glib_message(const GErrorPtr& err) {
  return err && err->message ? std::string(err->message) : std::string("unknown error");
}

// Runs `fn(cancellable)` on a worker thread and waits at most `timeout`. On timeout the call is
// cancelled; if it still does not return, the worker is detached (it owns its state through the
// shared_ptr) so that a hung keyring never hangs the caller.
template <class R>
struct BoundedCall {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::optional<R> result;
  CancellablePtr cancellable{lib().cancellable_new()};
};

template <class R, class F>
R run_bounded(std::chrono::milliseconds timeout, std::string_view what, F fn) {
  if (auto loaded = libsecret(); !loaded) return std::unexpected(loaded.error());
  auto call = std::make_shared<BoundedCall<R>>();
  std::thread worker([call, fn = std::move(fn)]() mutable {
    R r = fn(call->cancellable.get());
    std::lock_guard lock(call->mutex);
    call->result.emplace(std::move(r));
    call->done = true;
    call->cv.notify_all();
  });
  std::unique_lock lock(call->mutex);
  if (call->cv.wait_for(lock, timeout, [&] { return call->done; })) {
    lock.unlock();
    worker.join();
    return std::move(*call->result);
  }
  lib().cancellable_cancel(call->cancellable.get());  // thread-safe
  const bool finished = call->cv.wait_for(lock, k_cancel_grace, [&] { return call->done; });
  lock.unlock();
  if (finished) {
    worker.join();
  } else {
    worker.detach();
  }
  return fail(ErrorCode::service_unavailable, "the Secret Service did not answer within " +
                                                  std::to_string(timeout.count()) + " ms (" + std::string(what) + ")");
}

std::unexpected<Error> no_session_bus() {
  return fail(ErrorCode::service_unavailable, "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)");
}

// The stored form of a key: base64, nothing else. Junk or a wrong length is an error, never "absent".
Result<SecretBytes> decode_key(std::string_view text, std::string_view where) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  auto raw = encoding::base64_decode(text);
  if (!raw || raw->size() != k_master_key_size) {
    if (raw) wipe_string(*raw);
    return fail(ErrorCode::internal, std::string(where) + " does not hold a valid master key (expected " +
                                         std::to_string(k_master_key_size) + " bytes, base64-encoded)");
  }
  SecretBytes key(*raw);
  wipe_string(*raw);
  return key;
}

std::string quoted(const fs::path& p) { return std::string("'").append(p.string()).append("'"); }

MasterKey make_master_key(SecretBytes key, KeyringMode backend, std::unique_ptr<MasterKeyStore> store,
                          std::string warning, bool created) {
  MasterKey mk;
  mk.key = std::move(key);
  mk.backend = backend;
  mk.location = store->location();
  mk.fallback_warning = std::move(warning);
  mk.created = created;
  mk.store = std::move(store);
  return mk;
}

std::unexpected<Error> key_missing(const MasterKeyStore& where) {
  return fail(ErrorCode::internal,
              "the store holds encrypted secrets but its master key is not in " + where.location() +
                  "; it may be in the other keyring backend (try --keyring secret-service or --keyring file). "
                  "Without it the sealed secrets cannot be recovered");
}

// The key file: load it, or create it (with `candidate` if given) when missing.
Result<MasterKey> open_file_key(std::unique_ptr<FileKeyStore> file, Random& random, const MasterKeyOptions& options,
                                std::string warning, std::optional<SecretBytes> candidate = std::nullopt) {
  auto loaded = TRY(file->load());
  if (loaded) return make_master_key(std::move(*loaded), KeyringMode::file, std::move(file), std::move(warning), false);
  if (!options.create_if_missing) return key_missing(*file);

  SecretBytes key = candidate ? std::move(*candidate) : SecretBytes(k_master_key_size);
  if (!candidate) random.fill(key.data(), key.size());
  if (auto st = file->create(key); !st) {
    if (st.error().code != ErrorCode::conflict) return std::unexpected(st.error());
    // Another process created it first: use theirs.
    auto raced = TRY(file->load());
    if (!raced) return fail(ErrorCode::internal, file->location() + " appeared and vanished while creating it");
    return make_master_key(std::move(*raced), KeyringMode::file, std::move(file), std::move(warning), false);
  }
  return make_master_key(std::move(key), KeyringMode::file, std::move(file), std::move(warning), true);
}

std::string fallback_warning(std::string_view reason, const FileKeyStore& file) {
  return "no Secret Service answered (" + std::string(reason) + "), so the master key is kept in the file " +
         quoted(file.path()) +
         " (mode 0600): anyone who can read that file, or a backup of it, can decrypt the store. Run the daemon "
         "in a desktop session with a keyring to use the Secret Service, or pass --keyring file to choose the "
         "file deliberately";
}

}  // namespace

std::optional<KeyringMode> parse_keyring_mode(std::string_view text) {
  if (text == "auto") return KeyringMode::auto_;
  if (text == "secret-service") return KeyringMode::secret_service;
  if (text == "file") return KeyringMode::file;
  return std::nullopt;
}

std::string_view format_keyring_mode(KeyringMode mode) {
  switch (mode) {
    case KeyringMode::auto_:
      return "auto";
    case KeyringMode::secret_service:
      return "secret-service";
    case KeyringMode::file:
      return "file";
  }
  return "auto";
}

// ---- SecretServiceStore ----

SecretServiceStore::SecretServiceStore(std::string store_id, std::chrono::milliseconds timeout)
    : m_store_id(std::move(store_id)), m_timeout(timeout) {}

bool SecretServiceStore::session_bus_configured() {
  const char* address = std::getenv("DBUS_SESSION_BUS_ADDRESS");
  return address != nullptr && *address != '\0';
}

std::string SecretServiceStore::location() const {
  return "the Secret Service (item " + std::string(k_master_key_schema) + ", " +
         std::string(k_master_key_store_attribute) + "=" + m_store_id + ")";
}

Status SecretServiceStore::probe() {
  if (!session_bus_configured()) return no_session_bus();
  return run_bounded<Status>(m_timeout, "opening a session", [](GCancellable* cancellable) -> Status {
    GError* raw = nullptr;
    ServicePtr service(lib().service_get_sync(SECRET_SERVICE_OPEN_SESSION, cancellable, &raw));
    GErrorPtr err(raw);
    if (err || !service)
      return fail(ErrorCode::service_unavailable, "cannot reach the Secret Service: " + glib_message(err));
    return {};
  });
}

Result<std::optional<SecretBytes>> SecretServiceStore::load() {
  using R = Result<std::optional<SecretBytes>>;
  if (!session_bus_configured()) return no_session_bus();
  return run_bounded<R>(m_timeout, "looking up the master key", [id = m_store_id](GCancellable* cancellable) -> R {
    AttributesPtr attrs = make_attributes(id);
    GError* raw = nullptr;
    PasswordPtr password(lib().password_lookupv_sync(master_key_schema(), attrs.get(), cancellable, &raw));
    GErrorPtr err(raw);
    if (err) return fail(ErrorCode::service_unavailable, "the Secret Service lookup failed: " + glib_message(err));
    if (!password) return std::optional<SecretBytes>();
    auto key =
        TRY(decode_key(password.get(), "the Secret Service item " + std::string(k_master_key_schema) + " for " + id));
    return std::optional<SecretBytes>(std::move(key));
  });
}

Status SecretServiceStore::save(const SecretBytes& key) {
  if (!session_bus_configured()) return no_session_bus();
  if (key.size() != k_master_key_size)
    return fail(ErrorCode::internal, "a master key must be " + std::to_string(k_master_key_size) + " bytes");
  return run_bounded<Status>(
      m_timeout, "storing the master key", [id = m_store_id, key](GCancellable* cancellable) -> Status {
        AttributesPtr attrs = make_attributes(id);
        std::string encoded = encoding::base64_encode(key.view());
        const std::string label = "alumia-connect master key (" + id + ")";
        GError* raw = nullptr;
        const gboolean ok = lib().password_storev_sync(master_key_schema(), attrs.get(), SECRET_COLLECTION_DEFAULT,
                                                       label.c_str(), encoded.c_str(), cancellable, &raw);
        wipe_string(encoded);
        GErrorPtr err(raw);
        if (err || !ok)
          return fail(ErrorCode::service_unavailable,
                      "the Secret Service could not store the master key: " + glib_message(err));
        return {};
      });
}

Status SecretServiceStore::erase() {
  if (!session_bus_configured()) return no_session_bus();
  return run_bounded<Status>(
      m_timeout, "removing the master key", [id = m_store_id](GCancellable* cancellable) -> Status {
        AttributesPtr attrs = make_attributes(id);
        GError* raw = nullptr;
        lib().password_clearv_sync(master_key_schema(), attrs.get(), cancellable, &raw);  // FALSE: nothing to remove
        GErrorPtr err(raw);
        if (err)
          return fail(ErrorCode::service_unavailable,
                      "the Secret Service could not remove the master key: " + glib_message(err));
        return {};
      });
}

// ---- FileKeyStore ----

FileKeyStore::FileKeyStore(fs::path file) : m_path(std::move(file)) {}

std::string FileKeyStore::location() const { return "the key file " + quoted(m_path); }

Result<std::optional<SecretBytes>> FileKeyStore::load() {
  auto text = read_private_file(m_path);
  if (!text) {
    if (text.error().code == ErrorCode::not_found) return std::optional<SecretBytes>();
    return fail(text.error().code, "cannot use the master key file: " + text.error().message);
  }
  auto key = decode_key(*text, "the master key file " + quoted(m_path));
  wipe_string(*text);
  if (!key) return std::unexpected(key.error());
  return std::optional<SecretBytes>(std::move(*key));
}

Status FileKeyStore::save(const SecretBytes& key) {
  if (key.size() != k_master_key_size)
    return fail(ErrorCode::internal, "a master key must be " + std::to_string(k_master_key_size) + " bytes");
  std::string encoded = encoding::base64_encode(key.view()) + "\n";
  auto st = write_file_atomic_0600(m_path, encoded);
  wipe_string(encoded);
  return st;
}

Status FileKeyStore::create(const SecretBytes& key) {
  if (key.size() != k_master_key_size)
    return fail(ErrorCode::internal, "a master key must be " + std::to_string(k_master_key_size) + " bytes");
  std::string encoded = encoding::base64_encode(key.view()) + "\n";
  auto st = create_file_atomic_0600(m_path, encoded);
  wipe_string(encoded);
  return st;
}

// ---- open_master_key ----

std::string master_key_store_id(const fs::path& data_dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(data_dir, ec);
  if (ec) {
    p = fs::absolute(data_dir, ec);
    if (ec) p = data_dir;
    p = p.lexically_normal();
  }
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

fs::path master_key_file(const fs::path& data_dir) { return data_dir / k_master_key_file_name; }

Status check_master_key_file_setting(const fs::path& file) {
  if (file.empty()) return {};
  if (!file.is_absolute())
    return fail(ErrorCode::bad_request, "master-key-file must be an absolute path, not " + quoted(file));
  std::error_code ec;
  if (fs::is_directory(file, ec))
    return fail(ErrorCode::bad_request, "master-key-file " + quoted(file) +
                                            " is a directory; name the key file in it (e.g. " +
                                            quoted(file / k_master_key_file_name) + ")");
  if (!fs::is_directory(file.parent_path(), ec))
    return fail(ErrorCode::not_found, "the directory of master-key-file " + quoted(file) +
                                          " does not exist; create it (mode 0700) or name another path");
  return {};
}

Result<MasterKey> open_master_key(KeyringMode mode, const MasterKeyPlace& place, Random& random,
                                  const MasterKeyOptions& options) {
  TRY(ensure_private_dir(place.data_dir));
  TRY(check_master_key_file_setting(place.key_file));
  auto file = std::make_unique<FileKeyStore>(place.file());

  if (mode == KeyringMode::file) return open_file_key(std::move(file), random, options, "");

  auto service = std::make_unique<SecretServiceStore>(place.store_id(), options.timeout);

  if (mode == KeyringMode::secret_service) {
    const std::string next =
        ". Unlock or start your keyring (a desktop session, or gnome-keyring-daemon), or choose --keyring file";
    if (!SecretServiceStore::session_bus_configured())
      return fail(ErrorCode::service_unavailable,
                  "--keyring secret-service: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)" + next);
    auto loaded = service->load();
    if (!loaded)
      return fail(ErrorCode::service_unavailable, "--keyring secret-service: " + loaded.error().message + next);
    if (*loaded)
      return make_master_key(std::move(**loaded), KeyringMode::secret_service, std::move(service), "", false);
    if (!options.create_if_missing) return key_missing(*service);
    SecretBytes key(k_master_key_size);
    random.fill(key.data(), key.size());
    if (auto st = service->save(key); !st)
      return fail(ErrorCode::service_unavailable, "--keyring secret-service: " + st.error().message + next);
    return make_master_key(std::move(key), KeyringMode::secret_service, std::move(service), "", true);
  }

  // auto: an existing key wins over a new one, the Secret Service over the file.
  std::string reason;
  std::optional<SecretBytes> candidate;
  if (!SecretServiceStore::session_bus_configured()) {
    reason = "DBUS_SESSION_BUS_ADDRESS is unset";
  } else if (auto probed = service->probe(); !probed) {
    reason = probed.error().message;
  } else if (auto loaded = service->load(); !loaded) {
    reason = loaded.error().message;
  } else if (*loaded) {
    return make_master_key(std::move(**loaded), KeyringMode::secret_service, std::move(service), "", false);
  } else {
    // The Secret Service works but has no key for this store. A key file made by an earlier
    // fallback holds the key the store was sealed with: keep using it.
    auto from_file = TRY(file->load());
    if (from_file) {
      std::string warning = "this store's master key is in the file " + quoted(file->path()) +
                            " (created when no Secret Service answered); the Secret Service is available now, "
                            "but the key is not moved automatically";
      return make_master_key(std::move(*from_file), KeyringMode::file, std::move(file), std::move(warning), false);
    }
    if (!options.create_if_missing) return key_missing(*service);
    SecretBytes key(k_master_key_size);
    random.fill(key.data(), key.size());
    auto saved = service->save(key);
    if (saved) return make_master_key(std::move(key), KeyringMode::secret_service, std::move(service), "", true);
    reason = saved.error().message;
    // The save may still land after its timeout: put the same key in the file so both agree.
    candidate = std::move(key);
  }
  std::string warning = fallback_warning(reason, *file);
  return open_file_key(std::move(file), random, options, std::move(warning), std::move(candidate));
}

}  // namespace alumia
