// Telegram (PROVIDERS §1): behavioural vectors, token "abc-DEF_123".
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

EndpointConfig telegram_endpoint() {
  auto ep = testing::endpoint("telegram", {"abc-DEF_123"});
  ep.bot_id = "123456";
  return ep;
}

http::Request update(http::Headers headers, std::string body = R"({"update_id":10000,"message":{"text":"hi"}})") {
  headers.emplace_back("content-type", "application/json");
  return testing::post(std::move(body), std::move(headers));
}

}  // namespace

TEST_CASE("telegram: correct token → 200 empty, keyed by bot and update id", "[webhooks][telegram]") {
  REQUIRE_OK(testing::run(telegram_endpoint(), update({{"x-telegram-bot-api-secret-token", "abc-DEF_123"}}), 0), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "telegram:123456:10000");
  CHECK(v->event_type == "message");
  CHECK(v->status == 200);
  CHECK(v->reply_body.empty());
  CHECK(v->exact_reply);
}

TEST_CASE("telegram: same update twice yields the same key", "[webhooks][telegram]") {
  auto a = testing::run(telegram_endpoint(), update({{"x-telegram-bot-api-secret-token", "abc-DEF_123"}}), 0);
  auto b = testing::run(telegram_endpoint(), update({{"x-telegram-bot-api-secret-token", "abc-DEF_123"}}), 999999);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->event_key == b->event_key);
}

TEST_CASE("telegram: missing, wrong or duplicated token → 401", "[webhooks][telegram]") {
  const auto ep = telegram_endpoint();
  REQUIRE_UNAUTHORIZED(testing::run(ep, update({}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, update({{"x-telegram-bot-api-secret-token", "abc-DEF_12"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, update({{"x-telegram-bot-api-secret-token", "abc-DEF_1234"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, update({{"x-telegram-bot-api-secret-token", ""}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(
      ep,
      update({{"x-telegram-bot-api-secret-token", "abc-DEF_123"}, {"x-telegram-bot-api-secret-token", "abc-DEF_123"}}),
      0));
  // The bot token is never the secret.
  REQUIRE_UNAUTHORIZED(testing::run(ep, update({{"x-telegram-bot-api-secret-token", "123456:AAE-bot-token"}}), 0));
}

TEST_CASE("telegram: verified but malformed → 400", "[webhooks][telegram]") {
  const auto ep = telegram_endpoint();
  const std::pair<std::string, std::string> token{"x-telegram-bot-api-secret-token", "abc-DEF_123"};
  auto no_id = testing::run(ep, update({token}, R"({"message":{}})"), 0);
  REQUIRE_FALSE(no_id);
  CHECK(no_id.error().code == ErrorCode::bad_request);
  auto not_json = testing::run(ep, update({token}, "update_id=1"), 0);
  REQUIRE_FALSE(not_json);
  CHECK(not_json.error().code == ErrorCode::bad_request);
  auto form = testing::run(ep, testing::post(R"({"update_id":1})", {token, {"content-type", "text/plain"}}), 0);
  REQUIRE_FALSE(form);
  CHECK(form.error().code == ErrorCode::bad_request);
  auto charset = testing::run(
      ep, testing::post(R"({"update_id":1})", {token, {"content-type", "application/json; charset=utf-8"}}), 0);
  CHECK(charset.has_value());
}

TEST_CASE("telegram: secret_token validation", "[webhooks][telegram]") {
  CHECK(valid_telegram_secret_token("abc-DEF_123"));
  CHECK(valid_telegram_secret_token(std::string(256, 'a')));
  CHECK_FALSE(valid_telegram_secret_token("abc def"));
  CHECK_FALSE(valid_telegram_secret_token(""));
  CHECK_FALSE(valid_telegram_secret_token(std::string(257, 'a')));
  CHECK_FALSE(valid_telegram_secret_token("abc:def"));

  const Verifier* v = find_verifier("telegram");
  auto ep = telegram_endpoint();
  CHECK(v->check_config(ep).has_value());
  ep.secrets = {"abc def"};
  CHECK_FALSE(v->check_config(ep).has_value());
  ep = telegram_endpoint();
  ep.bot_id.clear();
  CHECK_FALSE(v->check_config(ep).has_value());
}
