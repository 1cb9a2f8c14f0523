#include "output.hpp"

#include <algorithm>

namespace alumia::cli {

void print_table(std::ostream& out, const Table& table, const CellDecorator& decorate) {
  std::vector<std::size_t> widths(table.headers.size(), 0);
  for (std::size_t i = 0; i < table.headers.size(); ++i) widths[i] = table.headers[i].size();
  for (const auto& row : table.rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  const auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string s;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < cells.size() ? cells[i] : "";
      const bool last = i + 1 == widths.size();
      const std::size_t pad = last ? 0 : widths[i] - cell.size() + 2;
      if (!header && decorate) cell = decorate(i, cell);
      s += cell;
      s.append(pad, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(table.headers, true);
  for (const auto& row : table.rows) line(row, false);
}

void print_fields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields) out << k << ':' << std::string(w - k.size() + 2, ' ') << v << '\n';
}

std::string jstr(const json& j, std::string_view key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool jbool(const json& j, std::string_view key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string jdisplay(const json& j, std::string_view key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_array()) {
    std::string s;
    for (const auto& e : *it) {
      if (!s.empty()) s += ", ";
      s += e.is_string() ? e.get<std::string>() : e.dump();
    }
    return s.empty() ? "-" : s;
  }
  return it->dump();
}

std::string short_time(const std::string& iso) {
  if (iso.size() < 19 || iso[10] != 'T') return iso.empty() ? "-" : iso;
  std::string s = iso.substr(0, 19);
  s[10] = ' ';
  return s;
}

void print_json(std::ostream& out, const json& data) { out << data.dump(2) << '\n'; }

}  // namespace alumia::cli
