// The connector catalog loader (common/catalog/: strict JSON, schema validation, the connectors.d merge).
// The first byte picks the mode, the rest is a JSON document:
//   even: the document is the built-in catalog (load_catalog(text, no overrides));
//   odd:  the document is a connectors.d override file merged over the compiled-in catalog.
// A document the loader refuses must be VALIDATION_ERROR with a message; one it accepts must give a
// catalog whose connectors can be looked up by their slugs.
#include "fuzz_common.hpp"

#include <alumia/catalog/catalog.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace alumia;

namespace {

// One private directory for the override file, made once and removed at exit.
const std::filesystem::path& override_dir() {
  static const std::filesystem::path dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "alumia-fuzz-catalog-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) fuzz::finding("fuzz_catalog", "harness", "mkdtemp failed");
    std::atexit([] { std::filesystem::remove_all(override_dir()); });
    return std::filesystem::path(templ);
  }();
  return dir;
}

void check(const Result<Catalog>& catalog) {
  if (!catalog) {
    if (catalog.error().code != ErrorCode::validation_error)
      fuzz::finding("fuzz_catalog", "a refusal that is not VALIDATION_ERROR", catalog.error().message);
    if (catalog.error().message.empty()) fuzz::finding("fuzz_catalog", "a refusal without a message");
    return;
  }
  for (const auto& c : catalog->all())
    if (catalog->find(c.slug) == nullptr) fuzz::finding("fuzz_catalog", "a connector not found by its slug", c.slug);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view doc = fuzz::as_text(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    check(load_catalog(doc, {}));
    return 0;
  }
  const auto file = override_dir() / "override.json";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(doc.data(), static_cast<std::streamsize>(doc.size()));
  }
  check(load_catalog(override_dir()));
  return 0;
}
