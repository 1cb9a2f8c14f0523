// alumia-connect token ID: prints only the credential, for $(...) in scripts (like `gh auth token`).
#include "app.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

namespace alumia::cli {
namespace {

// What `token` prints: the access token; or the one API-key value; or the values as JSON.
std::string token_text(const json& data) {
  if (!jstr(data, "accessToken").empty()) return jstr(data, "accessToken");
  json values = data.contains("values") && data["values"].is_object() ? data["values"] : data;
  if (values.is_object()) {
    json strings = json::object();
    for (const auto& [k, v] : values.items())
      if (k != "tokenType" && k != "expiresAt" && k != "scopes" && k != "connectionId" && k != "authType")
        strings[k] = v;
    if (strings.size() == 1 && strings.begin()->is_string()) return strings.begin()->get<std::string>();
    return strings.dump();
  }
  return values.dump();
}

CliStatus run_token(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->post("/api/v1/connections/" + encode_component(id) + "/token"));
  std::string text = ctx.global.json ? data.dump(2) : token_text(data);
  ctx.out << text << '\n' << std::flush;
  wipe_string(text);
  return {};
}

}  // namespace

void register_token(CLI::App& app, CliContext& ctx) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("token", "Print a fresh access token (or the API-key value) of a connection");
  cmd->add_option("ID", *id, "Connection id")->required();
  on_run(*cmd, ctx, [&ctx, id] { return run_token(ctx, *id); });
}

}  // namespace alumia::cli
