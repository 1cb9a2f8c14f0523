#pragma once
// Human output: aligned tables and key/value blocks on stdout. Machine output (--json) is the
// envelope's data, pretty-printed with 2 spaces.
#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::cli {

using nlohmann::json;

// Column widths from the plain text; `colorize` (optional) wraps a cell after padding so escape
// codes do not break the alignment.
struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};
using CellDecorator = std::function<std::string(std::size_t column, const std::string& cell)>;
void print_table(std::ostream& out, const Table& table, const CellDecorator& decorate = {});

// "key:   value" lines, keys padded to the longest.
void print_fields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields);

// Tolerant accessors: missing or differently typed members give "" (never throw).
std::string jstr(const json& j, std::string_view key);
bool jbool(const json& j, std::string_view key);
// A value as a display string: strings as is, null as "-", arrays joined with ", ".
std::string jdisplay(const json& j, std::string_view key);
// ISO timestamps shortened for tables: "2025-11-29T03:28:00.123Z" → "2025-11-29 03:28:00".
std::string short_time(const std::string& iso);

void print_json(std::ostream& out, const json& data);

}  // namespace alumia::cli
