// Telegram (Bot API): setWebhook with the endpoint's secret_token, then getWebhookInfo for the report;
// removal is deleteWebhook. The bot token is part of every call's URL path
// (https://api.telegram.org/bot<token>/<method>), so no URL of a call ever reaches a message or the
// log, and the messages of failed calls are scrubbed of the token in case a layer below quoted one
// (detail::send and provider_text, shared with the other registrars).
#include "provider_call.hpp"

#include <alumia/base/clock.hpp>
#include <alumia/base/try.hpp>
#include <alumia/net/url.hpp>
#include <alumia/setup/registrar.hpp>

#include <spdlog/spdlog.h>

#include <array>

namespace alumia::setup {
namespace {

using nlohmann::json;

// The ports setWebhook accepts (Bot API: "Ports currently supported for webhooks: 443, 80, 88, 8443").
constexpr std::array<uint16_t, 4> k_ports = {443, 80, 88, 8443};

// A Telegram update type (message, callback_query, chat_member, ...).
bool valid_update_type(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos;
}

// An empty allowed_updates is Telegram's "every type but a few".
const detail::EventRule k_events{valid_update_type, "Telegram update type",
                                 "lower-case words joined by _, e.g. message, callback_query, chat_member", true};

class TelegramRegistrar final : public Registrar {
 public:
  Provider provider() const override { return Provider::telegram; }
  bool generates_secret() const override { return true; }

  Status check(const SetupOptions& options) const override {
    if (options.repo || options.org)
      return fail(ErrorCode::bad_request, "--repo and --org are for github; a telegram bot has one webhook");
    return detail::check_events(options.events, k_events);
  }

  Result<Registration> apply(const RegistrarContext& ctx, const SetupOptions& options) const override {
    TRY(check_port(ctx.receive_url));
    if (ctx.secret.empty()) return fail(ErrorCode::internal, "the endpoint has no secret_token to register");
    json body{{"url", ctx.receive_url},
              {"secret_token", ctx.secret.str()},
              {"allowed_updates", options.events ? json(*options.events) : json::array()}};
    if (options.drop_pending) body["drop_pending_updates"] = true;
    std::string text = body.dump();
    wipe_string(body["secret_token"].get_ref<std::string&>());
    auto set = call(ctx, "setWebhook", text);
    wipe_string(text);
    TRY(set);
    Registration reg;
    reg.report = TRY(webhook_info(ctx));
    reg.state = json{{"url", ctx.receive_url}, {"allowedUpdates", body["allowed_updates"]}};
    return reg;
  }

  Result<Registration> remove(const RegistrarContext& ctx, const SetupOptions& options) const override {
    json body = json::object();
    if (options.drop_pending) body["drop_pending_updates"] = true;
    TRY(call(ctx, "deleteWebhook", body.dump()));
    Registration reg;
    reg.report = TRY(webhook_info(ctx));
    return reg;
  }

 private:
  static Status check_port(const std::string& receive_url) {
    auto u = TRY(url::parse(receive_url));
    for (uint16_t p : k_ports)
      if (u.port == p) return {};
    return fail(ErrorCode::validation_error,
                "Telegram delivers webhooks only to ports 443, 80, 88 and 8443, and the base URL puts the receive URL "
                "on port " +
                    std::to_string(u.port) + ": use a base URL on one of those ports (e.g. a reverse proxy on 443)");
  }

  // One Bot API method; its `result`, or its refusal in our codes (registrar.hpp).
  static Result<json> call(const RegistrarContext& ctx, const std::string& method, const std::string& body) {
    http::OutboundRequest req;
    req.method = body.empty() ? "GET" : "POST";
    std::string token(ctx.credential.view());
    req.url = detail::trimmed_base(ctx.api_base) + "/bot" + token + "/" + method;
    req.body = body;
    if (!body.empty()) req.content_type = "application/json";
    wipe_string(token);
    const std::string who = "Telegram's " + method;
    const auto res = TRY(detail::send(ctx, std::move(req), who));
    const json answer = detail::parse_body(res);
    const std::string description =
        detail::provider_text(detail::string_member(answer, "description").value_or(""), ctx);
    const int status = res.status;
    if (status == 200 && answer.is_object() && answer.value("ok", false) && answer.contains("result"))
      return answer["result"];
    const std::string http = detail::http_status(status, description);
    if (status == 401 || status == 403 || status == 404)
      return fail(ErrorCode::validation_error, "Telegram refused the bot token of connection " + ctx.connection_id +
                                                   " (" + http + "); update it with `alumia-connect credentials " +
                                                   ctx.connection_id + "`");
    if (status == 400)
      return fail(ErrorCode::validation_error,
                  "Telegram refused " + method + ": " + (description.empty() ? http : description));
    if (status == 429) {
      int retry_after = 0;
      if (answer.is_object() && answer.contains("parameters") && answer["parameters"].is_object()) {
        const json& p = answer["parameters"];
        if (p.contains("retry_after") && p["retry_after"].is_number_integer())
          retry_after = static_cast<int>(std::clamp<int64_t>(p["retry_after"].get<int64_t>(), 1, 86'400));
      }
      Error e{ErrorCode::too_many_requests,
              "Telegram is rate-limiting " + method + " (" + http + ")" +
                  (retry_after > 0 ? "; retry after " + std::to_string(retry_after) + " s" : "; retry later"),
              retry_after};
      return std::unexpected(std::move(e));
    }
    return std::unexpected(detail::unexpected_answer(who, status, http));
  }

  static Result<json> webhook_info(const RegistrarContext& ctx) {
    const json info = TRY(call(ctx, "getWebhookInfo", ""));
    if (!info.is_object()) return fail(ErrorCode::service_unavailable, "getWebhookInfo answered no object");
    auto str = [&](const char* k) { return info.contains(k) && info[k].is_string() ? info[k] : json(nullptr); };
    auto num = [&](const char* k) { return info.contains(k) && info[k].is_number_integer() ? info[k] : json(nullptr); };
    json last_error_date = nullptr;
    if (info.contains("last_error_date") && info["last_error_date"].is_number_integer())
      last_error_date = format_time_ms(info["last_error_date"].get<int64_t>() * 1000);
    return json{{"url", info.contains("url") && info["url"].is_string() ? info["url"] : json("")},
                {"pendingUpdateCount", info.contains("pending_update_count") ? num("pending_update_count") : json(0)},
                {"lastErrorDate", last_error_date},
                {"lastErrorMessage", str("last_error_message")},
                {"maxConnections", num("max_connections")},
                {"allowedUpdates", info.contains("allowed_updates") && info["allowed_updates"].is_array()
                                       ? info["allowed_updates"]
                                       : json(nullptr)}};
  }
};

}  // namespace

const Registrar& telegram_registrar() {
  static const TelegramRegistrar k_registrar;
  return k_registrar;
}

}  // namespace alumia::setup
