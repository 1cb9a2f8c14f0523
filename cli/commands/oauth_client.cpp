// alumia-connect oauth-client set|unset SLUG: an OAuth client id and secret stored encrypted by the
// daemon. The secret is read from stdin (never an argument), so it stays out of argv and history.
#include "credentials_util.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

namespace alumia::cli {
namespace {

CliStatus run_set(CliContext& ctx, const std::string& slug, const std::string& client_id) {
  auto client = TRY(ctx.client());
  auto secret = TRY(read_secret(ctx, "client secret for " + slug,
                                "printf %s \"$SECRET\" | alumia-connect oauth-client set " + slug + " --client-id ID"));
  std::string body = json{{"clientId", client_id}, {"clientSecret", secret}}.dump();
  wipe_string(secret);
  auto data = client->post_raw("/api/v1/oauth-clients/" + encode_component(slug), body);
  wipe_string(body);
  if (!data) return std::unexpected(data.error());
  if (ctx.global.json) ctx.out << data->dump(2) << '\n';
  else
    ctx.note("OAuth client for " + slug +
             " stored (encrypted); configured: " + (jbool(*data, "configured") ? "yes" : "no"));
  return {};
}

CliStatus run_unset(CliContext& ctx, const std::string& slug) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->del("/api/v1/oauth-clients/" + encode_component(slug)));
  if (ctx.global.json) ctx.out << data.dump(2) << '\n';
  else ctx.note("OAuth client for " + slug + " removed");
  return {};
}

}  // namespace

void register_oauth_client(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("oauth-client", "Set or remove a connector's OAuth client (secret from stdin)");
  group->require_subcommand(1);
  auto slug = std::make_shared<std::string>();
  auto client_id = std::make_shared<std::string>();
  auto* set = group->add_subcommand("set", "Store the client id and the secret read from stdin, encrypted");
  set->add_option("SLUG", *slug, "Connector slug")->required();
  set->add_option("--client-id", *client_id, "OAuth client id")->required();
  on_run(*set, ctx, [&ctx, slug, client_id] { return run_set(ctx, *slug, *client_id); });
  auto* unset = group->add_subcommand("unset", "Remove the stored client of a connector");
  unset->add_option("SLUG", *slug, "Connector slug")->required();
  on_run(*unset, ctx, [&ctx, slug] { return run_unset(ctx, *slug); });
}

}  // namespace alumia::cli
