// Lookups over a loaded catalog: by slug, a connector's API item, OAuth client variables, the API
// base, templates, credential patterns, authorize parameters and account labels.
#include <alumia/catalog/catalog.hpp>
#include <alumia/net/url.hpp>

#include <algorithm>
#include <regex>
#include <sstream>

namespace alumia {
namespace {

using nlohmann::json;

void append_label_value(std::vector<std::string>& out, const json& v) {
  if (v.is_string() && !v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
  else if (v.is_number()) out.push_back(v.dump());
}

}  // namespace

const CredentialField* Connector::find_field(std::string_view key) const {
  for (const auto& f : credential_fields)
    if (f.key == key) return &f;
  return nullptr;
}

Catalog::Catalog(std::vector<Connector> connectors) : m_connectors(std::move(connectors)) {
  std::sort(m_connectors.begin(), m_connectors.end(),
            [](const Connector& a, const Connector& b) { return a.slug < b.slug; });
}

const Connector* Catalog::find(std::string_view slug) const {
  auto it = std::lower_bound(m_connectors.begin(), m_connectors.end(), slug,
                             [](const Connector& c, std::string_view s) { return c.slug < s; });
  if (it == m_connectors.end() || it->slug != slug) return nullptr;
  return &*it;
}

OAuthClientEnvNames oauth_client_env_names(std::string_view slug) {
  std::string upper;
  upper.reserve(slug.size());
  for (char ch : slug) {
    if (ch == '-') upper += '_';
    else if (ch >= 'a' && ch <= 'z') upper += static_cast<char>(ch - 'a' + 'A');
    else upper += ch;
  }
  return {"ALUMIA_" + upper + "_CLIENT_ID", "ALUMIA_" + upper + "_CLIENT_SECRET"};
}

Result<std::string> resolve_api_base(const Connector& c, const EnvLookup& env) {
  if (!c.api_base) return fail(ErrorCode::bad_request, "connector " + c.slug + " has no API base URL in the catalog");
  if (!c.api_base->env_var.empty() && env) {
    if (auto v = env(c.api_base->env_var); v && !v->empty()) {
      if (auto ok = url::check_outbound_url(*v); !ok)
        return fail(ErrorCode::validation_error, c.api_base->env_var + "=" + *v + ": " + ok.error().message);
      std::string base = *v;
      while (!base.empty() && base.back() == '/') base.pop_back();
      return base;
    }
  }
  return c.api_base->default_url;
}

std::string expand_template(std::string_view text, const StringMap& values) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find('{', pos);
    if (open == std::string_view::npos) break;
    const auto close = text.find('}', open);
    if (close == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    const auto name = text.substr(open + 1, close - open - 1);
    if (auto it = values.find(name); it != values.end()) out += it->second;
    else out.append(text.substr(open, close - open + 1));
    pos = close + 1;
  }
  out.append(text.substr(pos));
  return out;
}

bool credential_value_matches(const CredentialField& field, std::string_view value) {
  if (!field.pattern) return true;
  try {
    const std::regex re(*field.pattern, std::regex::ECMAScript);
    return std::regex_match(value.begin(), value.end(), re);
  } catch (const std::exception&) {
    return false;  // validated at load, so unreachable in practice
  }
}

std::vector<UrlParam> authorize_extra_params(const OAuthConfig& oauth, bool select_account) {
  std::vector<UrlParam> out = oauth.extra_authorize_params;
  if (!select_account || !oauth.account_picker) return out;
  const auto& picker = *oauth.account_picker;
  auto it = std::find_if(out.begin(), out.end(), [&](const UrlParam& p) { return p.name == picker.name; });
  if (it == out.end()) {
    out.push_back(picker);
    return out;
  }
  std::istringstream words(it->value);
  for (std::string w; words >> w;)
    if (w == picker.value) return out;
  it->value += it->value.empty() ? picker.value : " " + picker.value;
  return out;
}

std::string extract_label(const LabelExtract& extract, const nlohmann::json& document) {
  std::vector<std::string> values;
  for (const auto& p : extract.json_pointers) {
    try {
      const json::json_pointer ptr(p);
      if (document.contains(ptr)) append_label_value(values, document.at(ptr));
    } catch (const json::exception&) {
      continue;  // a pointer that does not fit this document's shape
    }
    if (!values.empty() && extract.join.empty()) break;
  }
  if (values.empty()) return {};
  std::string label = values.front();
  if (!extract.join.empty())
    for (std::size_t i = 1; i < values.size(); ++i) label += extract.join + values[i];
  return extract.prefix + label;
}

}  // namespace alumia