#include <alumia/base/try.hpp>
#include <alumia/connections/sealed_values.hpp>

namespace alumia {

Result<std::vector<SealedValue>> seal_values(const Sealer& sealer, std::string_view table, std::string_view row_id,
                                             const std::map<std::string, std::string>& values) {
  std::vector<SealedValue> out;
  for (const auto& [field, value] : values) {
    auto blob = TRY(sealer.seal(value, table, row_id, field));
    out.push_back({field, std::move(blob)});
  }
  return out;
}

Result<std::map<std::string, std::string>> open_values(const Sealer& sealer, Store& store, std::string_view table,
                                                       std::string_view row_id) {
  auto stored = TRY(store.load_secrets(table, row_id));
  std::map<std::string, std::string> out;
  for (const auto& v : stored) {
    auto opened = sealer.open(v.blob, table, row_id, v.field);
    if (!opened) {
      for (auto& [k, value] : out) wipe_string(value);
      return std::unexpected(opened.error());
    }
    out[v.field] = opened->str();
  }
  return out;
}

}  // namespace alumia
