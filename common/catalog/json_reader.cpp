// The strict JSON reader under the catalog: duplicate keys refused, typed reads collecting every problem.
#include "json_reader.hpp"

#include <algorithm>
#include <set>

namespace alumia::catalog_detail {

std::string child(std::string_view base, std::string_view key) {
  if (base.empty()) return std::string(key);
  return std::string(base) + "." + std::string(key);
}

std::string element(std::string_view base, std::size_t i) { return std::string(base) + "[" + std::to_string(i) + "]"; }

void Diag::error(std::string_view path, std::string_view message) {
  std::string line = m_file + ": ";
  if (!path.empty()) line += std::string(path) + ": ";
  line += message;
  m_errors.push_back(std::move(line));
}

std::optional<json> parse_json(Diag& diag, std::string_view text) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() && parsed.is_string() &&
             !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    json doc = json::parse(text.begin(), text.end(), callback, true, false);
    if (!duplicate.empty()) {
      diag.error("", "invalid JSON: duplicate key " + in_quotes(duplicate));
      return std::nullopt;
    }
    return doc;
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto pos = what.find("] "); what.rfind("[json.exception", 0) == 0 && pos != std::string::npos)
      what = what.substr(pos + 2);
    diag.error("", "invalid JSON: " + what);
    return std::nullopt;
  }
}

void Obj::allow(std::initializer_list<std::string_view> keys) const {
  for (const auto& [key, value] : m_json->items()) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    std::string allowed;
    for (auto k : keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
    m_diag->error(at(key), "unknown field (allowed here: " + allowed + ")");
  }
}

const json* Obj::get(std::string_view key) const {
  auto it = m_json->find(std::string(key));
  if (it == m_json->end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> Obj::str(std::string_view key, bool required) const {
  const json* v = get(key);
  if (v == nullptr) {
    if (required) error(key, "required field is missing");
    return std::nullopt;
  }
  if (!v->is_string()) {
    error(key, std::string("must be a string, not ") + v->type_name());
    return std::nullopt;
  }
  auto s = v->get<std::string>();
  if (s.empty()) {
    error(key, "must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> Obj::boolean(std::string_view key) const {
  const json* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    error(key, std::string("must be true or false, not ") + v->type_name());
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<std::vector<std::string>> Obj::strings(std::string_view key, bool required) const {
  const json* v = get(key);
  if (v == nullptr) {
    if (required) error(key, "required field is missing");
    return std::nullopt;
  }
  if (!v->is_array()) {
    error(key, std::string("must be an array of strings, not ") + v->type_name());
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_string() || e.get_ref<const std::string&>().empty()) {
      m_diag->error(element(at(key), i), "must be a non-empty string");
      continue;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<StringMap> Obj::string_map(std::string_view key) const {
  const json* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) {
    error(key, std::string("must be an object of strings, not ") + v->type_name());
    return std::nullopt;
  }
  StringMap out;
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) {
      m_diag->error(child(at(key), k), std::string("must be a string, not ") + e.type_name());
      continue;
    }
    out.emplace(k, e.get<std::string>());
  }
  return out;
}

std::optional<Obj> Obj::object(std::string_view key, bool required) const {
  const json* v = get(key);
  if (v == nullptr) {
    if (required) error(key, "required field is missing");
    return std::nullopt;
  }
  if (!v->is_object()) {
    error(key, std::string("must be an object, not ") + v->type_name());
    return std::nullopt;
  }
  return Obj(*m_diag, *v, at(key));
}

const json* Obj::array(std::string_view key, bool required) const {
  const json* v = get(key);
  if (v == nullptr) {
    if (required) error(key, "required field is missing");
    return nullptr;
  }
  if (!v->is_array()) {
    error(key, std::string("must be an array, not ") + v->type_name());
    return nullptr;
  }
  return v;
}

}  // namespace alumia::catalog_detail
