#pragma once
// The strict JSON reader under the catalog (private to common/catalog): text → JSON refusing duplicate
// keys, and typed reads of one object at a field path that collect every problem of a file, each
// as "<file>: <field path>: <message>", instead of stopping at the first.
#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::catalog_detail {

using nlohmann::json;
using StringMap = std::map<std::string, std::string, std::less<>>;

inline std::string in_quotes(std::string_view s) {
  std::string out(1, '"');
  return out.append(s).append(1, '"');
}
// "oauth" + "tokenUrl" → "oauth.tokenUrl"; "" + "slug" → "slug".
std::string child(std::string_view base, std::string_view key);
// "tools" + 2 → "tools[2]".
std::string element(std::string_view base, std::size_t i);

// Collects the problems of one file, each as "<file>: <field path>: <message>".
class Diag {
 public:
  explicit Diag(std::string file) : m_file(std::move(file)) {}

  void error(std::string_view path, std::string_view message);
  bool ok() const { return m_errors.empty(); }
  std::size_t count() const { return m_errors.size(); }
  const std::string& file() const { return m_file; }
  std::vector<std::string> take() { return std::move(m_errors); }

 private:
  std::string m_file;
  std::vector<std::string> m_errors;
};

// Parses JSON text, refusing duplicate object keys (nlohmann would keep the last one silently).
std::optional<json> parse_json(Diag& diag, std::string_view text);

// A JSON object being read at a field path. Absent and null fields are treated alike (null is how a
// merge patch deletes a field). Each read reports a wrong type to the Diag and returns nothing.
class Obj {
 public:
  Obj(Diag& diag, const json& value, std::string path) : m_diag(&diag), m_json(&value), m_path(std::move(path)) {}

  Diag& diag() const { return *m_diag; }
  const std::string& path() const { return m_path; }
  std::string at(std::string_view key) const { return child(m_path, key); }
  void error(std::string_view key, std::string_view message) const { m_diag->error(at(key), message); }

  // Reports every key not in `keys` as unknown.
  void allow(std::initializer_list<std::string_view> keys) const;
  const json* get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key) != nullptr; }

  std::optional<std::string> str(std::string_view key, bool required) const;  // non-empty
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<std::vector<std::string>> strings(std::string_view key, bool required) const;
  std::optional<StringMap> string_map(std::string_view key) const;
  std::optional<Obj> object(std::string_view key, bool required) const;
  const json* array(std::string_view key, bool required) const;

  // A string that must be one of the table's names; the error lists them.
  template <class E, std::size_t N>
  std::optional<E> enumeration(std::string_view key, const std::array<std::pair<std::string_view, E>, N>& table,
                               bool required) const {
    auto s = str(key, required);
    if (!s) return std::nullopt;
    for (const auto& [name, value] : table)
      if (name == *s) return value;
    std::string allowed;
    for (const auto& [name, value] : table) allowed += (allowed.empty() ? "" : ", ") + in_quotes(name);
    error(key, in_quotes(*s) + " is not one of " + allowed);
    return std::nullopt;
  }
  // The same for an enum of base/vocabulary.hpp: read with its parse, listed with its to_string.
  template <class E>
  std::optional<E> enumeration(std::string_view key, std::optional<E> (*parse)(std::string_view),
                               std::span<const E> values, bool required) const {
    auto s = str(key, required);
    if (!s) return std::nullopt;
    if (auto v = parse(*s)) return v;
    std::string allowed;
    for (const E v : values) allowed += (allowed.empty() ? "" : ", ") + in_quotes(to_string(v));
    error(key, in_quotes(*s) + " is not one of " + allowed);
    return std::nullopt;
  }

 private:
  Diag* m_diag;
  const json* m_json;
  std::string m_path;
};

}  // namespace alumia::catalog_detail
