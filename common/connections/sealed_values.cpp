#include <alumia/connections/sealed_values.hpp>

namespace alumia {

Result<std::vector<SealedValue>> seal_values(const Sealer& sealer, std::string_view table, std::string_view row_id,
                                             const std::map<std::string, std::string>& values) {
  std::vector<SealedValue> out;
  for (const auto& [field, value] : values) {
    auto blob = sealer.seal(value, table, row_id, field);
    if (!blob) return std::unexpected(blob.error());
    out.push_back({field, std::move(*blob)});
  }
  return out;
}

Result<std::map<std::string, std::string>> open_values(const Sealer& sealer, Store& store, std::string_view table,
                                                       std::string_view row_id) {
  auto stored = store.load_secrets(table, row_id);
  if (!stored) return std::unexpected(stored.error());
  std::map<std::string, std::string> out;
  for (const auto& v : *stored) {
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
