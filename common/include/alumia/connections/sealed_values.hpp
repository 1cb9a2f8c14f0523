#pragma once
// The sealed secrets of one row (the `secrets` table: AAD = table + row id + field, SPEC §11), sealed
// and opened with the Sealer a service was given.
#include <alumia/base/error.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/store/domain.hpp>
#include <alumia/store/store.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace alumia {

Result<std::vector<SealedValue>> seal_values(const Sealer& sealer, std::string_view table, std::string_view row_id,
                                             const std::map<std::string, std::string>& values);
// Every stored field of the row, opened (field → plaintext; the caller wipes the values).
Result<std::map<std::string, std::string>> open_values(const Sealer& sealer, Store& store, std::string_view table,
                                                       std::string_view row_id);

}  // namespace alumia
