// The catalog's load and merge: the built-in catalog, then each connectors.d/*.json merged onto it
// (JSON Merge Patch per slug, or "replace"), each merged connector validated by the schema.
#include "schema.hpp"

#include <alumia/base/fs.hpp>
#include <alumia/base/try.hpp>
#include <alumia/catalog/catalog.hpp>

#include <algorithm>

namespace alumia::embedded {
extern const std::string_view catalog_json;
}

namespace alumia {

using namespace catalog_detail;

namespace {

constexpr std::string_view k_builtin_name = "built-in catalog (catalog/connectors.json)";
constexpr std::uintmax_t k_max_file_bytes = 1024 * 1024;
constexpr std::size_t k_max_reported_errors = 25;

struct Entry {
  json object;
  std::string path;
};

// A document holds {"connectors":[…]}, an array of connectors, or one connector object.
std::vector<Entry> split_document(Diag& diag, const json& doc) {
  std::vector<Entry> out;
  const json* list = nullptr;
  std::string base;
  if (doc.is_object() && doc.contains("connectors")) {
    Obj top(diag, doc, "");
    top.allow({"schemaVersion", "connectors"});
    if (const json* v = top.get("schemaVersion"); v != nullptr && (!v->is_number_integer() || v->get<int>() != 1))
      top.error("schemaVersion", "must be 1");
    list = top.array("connectors", true);
    base = "connectors";
    if (list == nullptr) return out;
  } else if (doc.is_array()) {
    list = &doc;
  } else if (doc.is_object()) {
    out.push_back({doc, ""});
    return out;
  } else {
    diag.error("", std::string(
                       "the top level must be a connector object, an array of them, or {\"connectors\": [...]}, not ") +
                       doc.type_name());
    return out;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string path = element(base, i);
    if (!(*list)[i].is_object()) {
      diag.error(path, std::string("must be a connector object, not ") + (*list)[i].type_name());
      continue;
    }
    out.push_back({(*list)[i], path});
  }
  return out;
}

struct Slot {
  json raw;  // the effective (merged) JSON, the base for later overrides
  Connector connector;
};

// Applies one document's connectors onto `slots`. Overrides are merged before validation, so the
// merged connector is checked as a whole and problems are reported at the override's field paths.
void apply_document(Diag& diag, const json& doc, std::map<std::string, Slot, std::less<>>& slots, bool is_override) {
  std::map<std::string, std::string, std::less<>> seen_here;
  for (auto& entry : split_document(diag, doc)) {
    Obj head(diag, entry.object, entry.path);
    auto slug = head.str("slug", true);
    if (!slug) continue;
    if (!valid_slug(*slug)) {
      head.error("slug", in_quotes(*slug) + " must match ^[a-z0-9][a-z0-9-]{0,62}$");
      continue;
    }
    if (auto [it, inserted] = seen_here.emplace(*slug, entry.path); !inserted) {
      head.error("slug", "duplicate slug " + in_quotes(*slug) + " (also at " +
                             (it->second.empty() ? "top level" : it->second) + ")");
      continue;
    }
    bool replace = false;
    if (const json* r = head.get("replace")) {
      if (!r->is_boolean()) head.error("replace", "must be true or false");
      else if (!is_override) head.error("replace", "only allowed in connectors.d files");
      else replace = r->get<bool>();
      entry.object.erase("replace");
    }
    json merged = entry.object;
    if (auto it = slots.find(*slug); it != slots.end() && !replace) {
      merged = it->second.raw;
      merged.merge_patch(entry.object);
    }
    const std::size_t before = diag.count();
    Connector c = read_connector(Obj(diag, merged, entry.path));
    if (diag.count() != before) continue;
    slots[*slug] = Slot{std::move(merged), std::move(c)};
  }
}

// An override can redirect a provider's token endpoint, so it must be the user's own file: opened
// without following a symbolic link, owned by the daemon's user and not writable by group or others.
std::optional<std::string> read_file(Diag& diag, const std::filesystem::path& path) {
  auto text = read_owned_file(path, Privacy::no_foreign_writes, k_max_file_bytes);
  if (!text) {
    diag.error("",
               text.error().code == ErrorCode::validation_error ? "file is larger than 1 MiB" : text.error().message);
    return std::nullopt;
  }
  return std::move(*text);
}

Result<std::vector<std::filesystem::path>> list_override_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  if (dir.empty()) return files;
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (ec || st.type() == std::filesystem::file_type::not_found) return files;
  if (st.type() != std::filesystem::file_type::directory)
    return fail(ErrorCode::validation_error, dir.string() + ": connectors.d exists but is not a directory");
  TRY(check_owned_dir(dir));
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return fail(ErrorCode::validation_error, dir.string() + ": cannot list connectors.d: " + ec.message());
  for (const auto& e : it) {
    const auto name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || e.path().extension() != ".json") continue;
    std::error_code fec;
    // A symbolic link is listed so that reading it is refused, not skipped without a word.
    if (!e.is_regular_file(fec) && !e.is_symlink(fec)) continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<Catalog> load_catalog(std::string_view builtin_json, const std::filesystem::path& connectors_d) {
  std::vector<std::string> errors;
  std::map<std::string, Slot, std::less<>> slots;
  {
    Diag diag{std::string(k_builtin_name)};
    if (auto doc = parse_json(diag, builtin_json)) apply_document(diag, *doc, slots, false);
    auto e = diag.take();
    errors.insert(errors.end(), e.begin(), e.end());
  }
  auto files = TRY(list_override_files(connectors_d));
  for (const auto& file : files) {
    Diag diag{file.string()};
    if (auto text = read_file(diag, file))
      if (auto doc = parse_json(diag, *text)) apply_document(diag, *doc, slots, true);
    auto e = diag.take();
    errors.insert(errors.end(), e.begin(), e.end());
  }
  if (!errors.empty()) {
    // One problem per line, the first leading, so a one-line log still names file and field.
    std::string message;
    for (std::size_t i = 0; i < errors.size() && i < k_max_reported_errors; ++i)
      message += (i == 0 ? "" : "\n") + errors[i];
    if (errors.size() > k_max_reported_errors)
      message += "\n… and " + std::to_string(errors.size() - k_max_reported_errors) + " more problems";
    return fail(ErrorCode::validation_error, message);
  }
  std::vector<Connector> connectors;
  connectors.reserve(slots.size());
  for (auto& [slug, slot] : slots) connectors.push_back(std::move(slot.connector));
  return Catalog(std::move(connectors));
}

Result<Catalog> load_catalog(const std::filesystem::path& connectors_d) {
  return load_catalog(embedded::catalog_json, connectors_d);
}
}  // namespace alumia
