#include <alumia/base/try.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/connections/sealed_values.hpp>

namespace alumia {
namespace {

constexpr std::string_view k_table = "oauth_clients";

}  // namespace

Result<std::optional<OAuthClient>> OAuthClients::find(const Connector& c) const {
  const auto names = oauth_client_env_names(c.slug);
  auto id = m_env(names.client_id);
  auto secret = m_env(names.client_secret);
  if (id && secret) return std::optional<OAuthClient>(OAuthClient{*id, SecretBytes(*secret)});
  auto stored = TRY(m_store.load_secrets(k_table, c.slug));
  std::optional<std::string> sid;
  std::optional<SecretBytes> ssecret;
  for (const auto& v : stored) {
    auto opened = TRY(m_sealer.open(v.blob, k_table, c.slug, v.field));
    if (v.field == "client_id") sid = opened.str();
    if (v.field == "client_secret") ssecret = std::move(opened);
  }
  if (sid && ssecret) return std::optional<OAuthClient>(OAuthClient{*sid, std::move(*ssecret)});
  return std::optional<OAuthClient>();
}

bool OAuthClients::configured(const Connector& c) const {
  if (c.auth_type != AuthType::oauth) return true;
  auto client = find(c);
  return client && client->has_value();
}

Status OAuthClients::set(const Connector& c, const SetOAuthClient& client) {
  if (c.auth_type != AuthType::oauth)
    return fail(ErrorCode::bad_request, "connector " + c.slug + " does not use OAuth");
  if (client.client_id.empty() || client.client_secret.empty())
    return fail(ErrorCode::bad_request, "client id and secret are required");
  std::map<std::string, std::string> values{{"client_id", client.client_id},
                                            {"client_secret", client.client_secret.str()}};
  auto sealed = seal_values(m_sealer, k_table, c.slug, values);
  wipe_string(values["client_secret"]);
  if (!sealed) return std::unexpected(sealed.error());
  return m_store.put_secrets(k_table, c.slug, *sealed);
}

Status OAuthClients::unset(const Connector& c) { return m_store.delete_secrets(k_table, c.slug); }

}  // namespace alumia
