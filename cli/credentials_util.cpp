#include "credentials_util.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

#include <algorithm>
#include <iterator>
#include <set>
#include <string>

namespace alumia::cli {

CliResult<std::pair<std::string, std::string>> parse_field(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    return usage_fail("--field expects KEY=VALUE, got '" + arg.substr(0, eq == std::string::npos ? 40 : eq) +
                      (eq == std::string::npos ? "'" : "=...'"));
  std::string key = arg.substr(0, eq);
  if (std::any_of(key.begin(), key.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n'; }))
    return usage_fail("--field key '" + key + "' contains whitespace");
  return std::pair{std::move(key), arg.substr(eq + 1)};
}

CliResult<std::map<std::string, std::string>> parse_fields(const std::vector<std::string>& args) {
  std::map<std::string, std::string> out;
  for (const auto& a : args) {
    auto kv = TRY(parse_field(a));
    if (out.contains(kv.first)) return usage_fail("--field " + kv.first + " is given more than once");
    out.emplace(std::move(kv.first), std::move(kv.second));
  }
  return out;
}

CliResult<std::map<std::string, std::string>> parse_values_json(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return usage_fail("--from-stdin expects a JSON object of credential values, e.g. {\"api_key\":\"...\"}");
  // Accept the request body shape {"values":{...}} as well.
  if (j.size() == 1 && j.contains("values") && j["values"].is_object()) j = j["values"];
  std::map<std::string, std::string> out;
  for (auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
    else if (v.is_number() || v.is_boolean()) out[k] = v.dump();
    else if (!v.is_null()) return usage_fail("--from-stdin: value of '" + k + "' must be a string");
  }
  return out;
}

CliResult<std::map<std::string, std::string>> collect_credentials(CliContext& ctx, const json& connector,
                                                                  const CredentialInput& input) {
  std::map<std::string, std::string> values;
  const json fields = connector.contains("credentialFields") && connector["credentialFields"].is_array()
                          ? connector["credentialFields"]
                          : json::array();
  std::set<std::string> known;
  std::set<std::string> secret;
  for (const auto& f : fields) {
    known.insert(jstr(f, "key"));
    if (jbool(f, "secret")) secret.insert(jstr(f, "key"));
  }
  if (input.from_stdin) {
    std::string text{std::istreambuf_iterator<char>(ctx.in), std::istreambuf_iterator<char>()};
    auto v = parse_values_json(text);
    wipe_string(text);
    if (!v) return std::unexpected(v.error());
    values = std::move(*v);
  }
  auto given = TRY(parse_fields(input.fields));
  for (auto& [k, v] : given) {
    if (secret.contains(k))
      ctx.warn("--field " + k +
               " puts a secret on the command line, where other local users can see it (ps) and "
               "your shell history keeps it; prefer the prompt or --from-stdin");
    values[k] = std::move(v);
  }
  for (const auto& [k, v] : values)
    if (!known.empty() && !known.contains(k))
      return usage_fail("unknown credential field '" + k + "' for " + jstr(connector, "slug") +
                        "; run `alumia-connect connectors show " + jstr(connector, "slug") + "`");
  std::vector<const json*> missing;
  for (const auto& f : fields)
    if (!values.contains(jstr(f, "key"))) missing.push_back(&f);
  if (missing.empty()) return values;
  // Scripts never get a prompt: without a terminal, missing required fields are a usage error.
  if (!ctx.tty.stdin_tty || input.from_stdin) {
    std::string names;
    for (const auto* f : missing)
      if (jbool(*f, "required")) names += (names.empty() ? "" : ", ") + jstr(*f, "key");
    if (names.empty()) return values;
    return usage_fail("missing required credential field(s) " + names + " for " + jstr(connector, "slug") +
                      ": pass --field KEY=VALUE or --from-stdin with a JSON object");
  }
  for (const auto* f : missing) {
    const std::string key = jstr(*f, "key");
    std::string label = jstr(*f, "label").empty() ? key : jstr(*f, "label");
    const bool required = jbool(*f, "required");
    std::string prompt = label + (required ? "" : " (optional)");
    if (!jstr(*f, "placeholder").empty() && !jbool(*f, "secret")) prompt += " [" + jstr(*f, "placeholder") + "]";
    prompt += ": ";
    for (;;) {
      auto line = TRY(prompt_line(ctx.err, prompt, jbool(*f, "secret")));
      if (!line.empty()) {
        values[key] = std::move(line);
        break;
      }
      if (!required) break;
      ctx.err << label << " is required.\n";
    }
  }
  return values;
}

CliResult<std::string> read_secret(CliContext& ctx, const std::string& what, const std::string& example) {
  std::string line;
  if (ctx.tty.stdin_tty) {
    auto got = TRY(prompt_line(ctx.err, what + ": ", true));
    line = std::move(got);
  } else {
    std::getline(ctx.in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  if (line.empty()) return usage_fail("no " + what + " on stdin (e.g. `" + example + "`)");
  return line;
}

CliResult<json> submit_credentials(CliContext& ctx, const std::string& connection_id,
                                   std::map<std::string, std::string>& values) {
  auto client = TRY(ctx.client());
  json body{{"values", json::object()}};
  for (const auto& [k, v] : values) body["values"][k] = v;
  std::string text = body.dump();
  for (auto& [k, v] : body["values"].items()) wipe_string(v.get_ref<std::string&>());
  for (auto& [k, v] : values) wipe_string(v);
  auto res = client->post_raw("/api/v1/connections/" + encode_component(connection_id) + "/credentials", text);
  wipe_string(text);
  return res;
}

std::string status_color(const std::string& status) {
  if (status == "active" || status == "succeeded") return "32";
  if (status == "pending" || status == "queued" || status == "running") return "33";
  if (status == "error" || status == "expired" || status == "failed" || status == "dead") return "31";
  return "2";
}

FieldDecorator status_fields(const CliContext& ctx) {
  return [&ctx](const std::string& key, const std::string& value) {
    return key == "status" || key == "job" ? ctx.paint(value, status_color(value).c_str()) : value;
  };
}

void print_connection(CliContext& ctx, const json& c) {
  std::vector<std::pair<std::string, std::string>> f{{"id", jstr(c, "id")},
                                                     {"connector", jstr(c, "connectorSlug")},
                                                     {"label", jdisplay(c, "label")},
                                                     {"auth", jdisplay(c, "authType")},
                                                     {"status", jstr(c, "status")},
                                                     {"account", jdisplay(c, "accountLabel")},
                                                     {"scopes", jdisplay(c, "scopes")},
                                                     {"expires", jdisplay(c, "expiresAt")},
                                                     {"refreshed", jdisplay(c, "lastRefreshedAt")},
                                                     {"created", jdisplay(c, "createdAt")},
                                                     {"updated", jdisplay(c, "updatedAt")}};
  if (c.contains("error") && c["error"].is_object())
    f.emplace_back("error", jstr(c["error"], "code") + ": " + jstr(c["error"], "message"));
  print_fields(ctx.out, f, status_fields(ctx));
}

}  // namespace alumia::cli
