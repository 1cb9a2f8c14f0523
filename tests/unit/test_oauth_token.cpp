// Token-response parsing: one fixture per provider quirk of OAUTH.md table 2.3 / §4.5, the failure
// classification of §3.5, and PKCE (RFC 7636 Appendix B).
#include <alumia/oauth/oauth_token.hpp>

#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using alumia::oauth::OAuthErrorKind;
using alumia::oauth::parse_token_response;
using alumia::oauth::TokenQuirks;

constexpr const char* k_json = "application/json; charset=utf-8";
constexpr const char* k_form = "application/x-www-form-urlencoded; charset=utf-8";

TokenQuirks slack_quirks() {
  TokenQuirks q;
  q.ok_field = true;
  q.nested_user_token = true;
  return q;
}

}  // namespace

TEST_CASE("standard JSON answer (the oidc-provider peer)", "[oauth]") {
  const std::string body =
      R"({"access_token":"LsCwiyWeabLXEQpLCAGpPcwOxUHfc5CTR41iRr-_c8Q","expires_in":60,)"
      R"("id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln","refresh_token":"E8Pxto3ak5XACC6iRbIL60j2Cmw",)"
      R"("scope":"openid email","token_type":"Bearer"})";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK(r->access_token.view() == "LsCwiyWeabLXEQpLCAGpPcwOxUHfc5CTR41iRr-_c8Q");
  CHECK(r->token_type == "Bearer");
  REQUIRE(r->refresh_token.has_value());
  CHECK(r->refresh_token->view() == "E8Pxto3ak5XACC6iRbIL60j2Cmw");
  CHECK(r->expires_in == 60);
  CHECK(r->scope_present);
  CHECK(r->scopes == std::vector<std::string>{"openid", "email"});
  CHECK_FALSE(r->user.has_value());
  // Nothing token-shaped survives in extra.
  CHECK(r->extra.is_object());
  CHECK_FALSE(r->extra.contains("id_token"));
  CHECK_FALSE(r->extra.contains("access_token"));
  CHECK_FALSE(r->extra.contains("refresh_token"));
  CHECK(r->extra.dump().find("LsCwiy") == std::string::npos);
}

TEST_CASE("GitHub: form-encoded success with comma scopes, no expiry, no refresh token", "[oauth]") {
  const std::string body = "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer";
  auto r = parse_token_response(200, k_form, body, TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK(r->access_token.view() == "gho_16C7e42F292c6912E7710c838347Ae178B4a");
  CHECK(r->token_type == "Bearer");
  CHECK_FALSE(r->expires_in.has_value());
  CHECK_FALSE(r->refresh_token.has_value());
  CHECK(r->scope_present);
  CHECK(r->scopes == std::vector<std::string>{"repo", "gist"});
}

TEST_CASE("GitHub: form body is refused when the provider is configured for JSON only", "[oauth]") {
  TokenQuirks q;
  q.form_encoded_ok = false;
  auto r = parse_token_response(200, k_form, "access_token=gho_x&token_type=bearer", q, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "malformed_response");
  CHECK(r.error().classify() == OAuthErrorKind::malformed);
}

TEST_CASE("GitHub: empty scope means nothing was granted", "[oauth]") {
  auto r = parse_token_response(200, k_form, "access_token=gho_abc&scope=&token_type=bearer", TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK(r->scope_present);
  CHECK(r->scopes.empty());
}

TEST_CASE("GitHub: 200 with error=bad_verification_code is a failure", "[oauth]") {
  const std::string body =
      "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri="
      "https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-"
      "errors%2F%23bad-verification-code";
  auto r = parse_token_response(200, k_form, body, TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "bad_verification_code");
  CHECK(r.error().description == "The code passed is incorrect or expired.");
  CHECK(r.error().http_status == 200);
  CHECK_FALSE(r.error().transient);
  CHECK(r.error().classify() == OAuthErrorKind::grant_invalid);
}

TEST_CASE("GitHub: JSON 200 with incorrect_client_credentials is a client problem", "[oauth]") {
  const std::string body =
      R"({"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.",)"
      R"("error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"})";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().classify() == OAuthErrorKind::client_invalid);
  CHECK(r.error().to_error().code == alumia::ErrorCode::bad_request);
}

TEST_CASE("Slack: ok:false with invalid_code", "[oauth]") {
  auto r = parse_token_response(200, k_json, R"({"ok":false,"error":"invalid_code"})", slack_quirks(), ',');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "invalid_code");
  CHECK(r.error().http_status == 200);
  CHECK(r.error().classify() == OAuthErrorKind::grant_invalid);

  auto refresh =
      parse_token_response(200, k_json, R"({"ok":false,"error":"invalid_refresh_token"})", slack_quirks(), ',');
  REQUIRE_FALSE(refresh.has_value());
  CHECK(refresh.error().classify() == OAuthErrorKind::grant_invalid);

  auto limited = parse_token_response(200, k_json, R"({"ok":false,"error":"ratelimited"})", slack_quirks(), ',');
  REQUIRE_FALSE(limited.has_value());
  CHECK(limited.error().transient);
  CHECK(limited.error().classify() == OAuthErrorKind::transient);

  auto client = parse_token_response(200, k_json, R"({"ok":false,"error":"bad_client_secret"})", slack_quirks(), ',');
  REQUIRE_FALSE(client.has_value());
  CHECK(client.error().classify() == OAuthErrorKind::client_invalid);
}

TEST_CASE("Slack: bot token top-level, user token nested in authed_user", "[oauth]") {
  const std::string body = R"({
    "ok": true,
    "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "token_type": "bot",
    "scope": "commands,incoming-webhook",
    "bot_user_id": "U0KRQLJ9H",
    "app_id": "A0KRD7HC3",
    "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
    "enterprise": {"name": "slack-sports", "id": "E12345678"},
    "is_enterprise_install": false,
    "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234-5678-abcdef",
                    "token_type": "user"},
    "incoming_webhook": {"channel": "#general", "channel_id": "C12345678",
                         "configuration_url": "https://teamname.slack.com/services/B12345678",
                         "url": "https://hooks.slack.com/services/T9TK3CUKW/B12345678/sEcReTpArT"}
  })";
  auto r = parse_token_response(200, k_json, body, slack_quirks(), ',');
  REQUIRE(r.has_value());
  CHECK(r->access_token.view() == "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy");
  CHECK(r->token_type == "bot");
  CHECK(r->scopes == std::vector<std::string>{"commands", "incoming-webhook"});
  CHECK_FALSE(r->expires_in.has_value());
  REQUIRE(r->user.has_value());
  CHECK(r->user->access_token.view() == "xoxp-1234-5678-abcdef");
  CHECK(r->user->token_type == "user");
  CHECK(r->user->scopes == std::vector<std::string>{"chat:write"});

  CHECK(r->extra["team"]["name"] == "Slack Softball Team");
  CHECK(r->extra["enterprise"]["id"] == "E12345678");
  CHECK(r->extra["bot_user_id"] == "U0KRQLJ9H");
  CHECK(r->extra["authed_user"]["id"] == "U1234");
  CHECK(r->extra["incoming_webhook"]["channel"] == "#general");
  CHECK_FALSE(r->extra["incoming_webhook"].contains("url"));
  CHECK_FALSE(r->extra.contains("ok"));
  const std::string dumped = r->extra.dump();
  CHECK(dumped.find("xox") == std::string::npos);
  CHECK(dumped.find("sEcReTpArT") == std::string::npos);
}

TEST_CASE("Slack: user-scope-only install promotes the authed_user token", "[oauth]") {
  const std::string body =
      R"({"ok":true,"app_id":"A0KRD7HC3","team":{"id":"T9TK3CUKW","name":"Softball"},)"
      R"("authed_user":{"id":"U1234","scope":"search:read,users:read","access_token":"xoxp-user-only","token_type":"user",)"
      R"("refresh_token":"xoxe-1-refresh","expires_in":43200}})";
  auto r = parse_token_response(200, k_json, body, slack_quirks(), ',');
  REQUIRE(r.has_value());
  CHECK(r->access_token.view() == "xoxp-user-only");
  CHECK(r->token_type == "user");
  REQUIRE(r->refresh_token.has_value());
  CHECK(r->refresh_token->view() == "xoxe-1-refresh");
  CHECK(r->expires_in == 43200);
  CHECK(r->scopes == std::vector<std::string>{"search:read", "users:read"});
  CHECK_FALSE(r->user.has_value());
  CHECK(r->extra["authed_user"]["id"] == "U1234");
  CHECK(r->extra.dump().find("xox") == std::string::npos);
}

TEST_CASE("Slack quirks off: authed_user is not a credential", "[oauth]") {
  auto r = parse_token_response(200, k_json, R"({"ok":true,"authed_user":{"id":"U1","access_token":"xoxp-1"}})",
                                TokenQuirks{}, ',');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().classify() == OAuthErrorKind::malformed);
}

TEST_CASE("Linear: scope as a JSON array, rotating refresh token", "[oauth]") {
  const std::string body =
      R"({"access_token":"lin_oat_00000000000000000000000000000","token_type":"Bearer","expires_in":86399,)"
      R"("scope":["read","write","read"],"refresh_token":"lin_ort_1111"})";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ',');
  REQUIRE(r.has_value());
  CHECK(r->scope_present);
  CHECK(r->scopes == std::vector<std::string>{"read", "write"});
  CHECK(r->expires_in == 86399);
  REQUIRE(r->refresh_token.has_value());
}

TEST_CASE("Notion: no expires_in, lower-case bearer, owner and workspace fields", "[oauth]") {
  const std::string body = R"({
    "access_token": "secret_e2a9c1f0b3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b",
    "token_type": "bearer",
    "refresh_token": "nrt_4991090011501Ejc6Wf",
    "bot_id": "b3414d659-1224-5ty7-6ffr-cc9d8773drt601288f",
    "workspace_name": "Ada's Workspace",
    "workspace_icon": "https://www.notion.so/image/icon.png",
    "workspace_id": "j565j4d7x3-2882-61bs-564a-jj9d9ui-c36hxfr7x",
    "owner": {"type": "user", "user": {"object": "user", "id": "4f9a1f2e-9b7c-4d0e", "name": "Ada",
              "type": "person", "person": {"email": "ada@example.test"}}},
    "duplicated_template_id": null,
    "request_id": "f8b8a0d3-0000-4000-8000-000000000000"
  })";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK(r->token_type == "Bearer");
  CHECK_FALSE(r->expires_in.has_value());
  CHECK_FALSE(r->scope_present);
  CHECK(r->scopes.empty());
  CHECK(r->extra["workspace_name"] == "Ada's Workspace");
  CHECK(r->extra["owner"]["user"]["person"]["email"] == "ada@example.test");
  CHECK(r->extra["bot_id"] == "b3414d659-1224-5ty7-6ffr-cc9d8773drt601288f");
  CHECK(r->extra.contains("duplicated_template_id"));
}

TEST_CASE("Salesforce: instance_url and issued_at, no expires_in, signature dropped", "[oauth]") {
  const std::string body =
      R"({"access_token":"00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMeYMN7cj8EoWr78nt1u44zU31IbYNNJguseu",)"
      R"("signature":"SSSbLO/gBhmmyNUvN18ODBDFYHzakxOMgqYtu+hDPsc=","scope":"refresh_token api",)"
      R"("instance_url":"https://yourInstance.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",)"
      R"("token_type":"Bearer","issued_at":"1278448101416","refresh_token":"5Aep8614iLM.Dq661ePDmPEgaAW9Oh_L3JKkDpB4xReb54_pZebnUG0h6Sb4KUVDpNtWEofWM39yg=="})";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK_FALSE(r->expires_in.has_value());
  CHECK(r->scopes == std::vector<std::string>{"refresh_token", "api"});
  CHECK(r->extra["instance_url"] == "https://yourInstance.salesforce.com");
  CHECK(r->extra["id"] == "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P");
  CHECK(r->extra["issued_at"] == "1278448101416");
  CHECK_FALSE(r->extra.contains("signature"));
  CHECK(r->refresh_token.has_value());
}

TEST_CASE("Microsoft: ext_expires_in kept as extra", "[oauth]") {
  const std::string body =
      R"({"token_type":"Bearer","scope":"https://graph.microsoft.com/Mail.Read https://graph.microsoft.com/User.Read",)"
      R"("expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFRQUJBQUFBQUFBe","refresh_token":"0.AAAA-refresh"})";
  auto r = parse_token_response(200, k_json, body, TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK(r->expires_in == 3599);
  CHECK(r->extra["ext_expires_in"] == 3599);
  CHECK(r->scopes.size() == 2);
}

TEST_CASE("Microsoft: AADSTS error with error_codes, trace text cleaned", "[oauth]") {
  const std::string body =
      R"({"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has )"
      R"(expired due to inactivity. Send a new interactive authorization request for this user and resource.\r\n)"
      R"(Trace ID: 2f0b4a5e-1f5c-4f0e-9d8a-6b2b6d6f0c00\r\nCorrelation ID: 7f3e1c2d-0a1b-4c5d-8e9f-001122334455\r\n)"
      R"(Timestamp: 2026-01-01 00:00:00Z","error_codes":[70008],"timestamp":"2026-01-01 00:00:00Z",)"
      R"("trace_id":"2f0b4a5e-1f5c-4f0e-9d8a-6b2b6d6f0c00","correlation_id":"7f3e1c2d-0a1b-4c5d-8e9f-001122334455",)"
      R"("error_uri":"https://login.microsoftonline.com/error?code=70008"})";
  auto r = parse_token_response(400, k_json, body, TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  const auto& e = r.error();
  CHECK(e.code == "invalid_grant");
  CHECK(e.http_status == 400);
  CHECK(e.error_codes == std::vector<int64_t>{70008});
  CHECK(e.classify() == OAuthErrorKind::grant_invalid);
  CHECK(e.description.rfind("AADSTS70008: The provided authorization code", 0) == 0);
  CHECK(e.description.find('\r') == std::string::npos);
  CHECK(e.description.find('\n') == std::string::npos);
  CHECK(e.description.size() <= alumia::oauth::OAuthError::k_max_description + 3);
}

TEST_CASE("Microsoft: AADSTS code read from the text when error_codes is missing", "[oauth]") {
  auto r = parse_token_response(
      400, k_json, R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."})",
      TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().error_codes == std::vector<int64_t>{7000215});
  CHECK(r.error().classify() == OAuthErrorKind::client_invalid);
}

TEST_CASE("problem+json errors", "[oauth]") {
  SECTION("code from the type URI, description from detail") {
    auto r = parse_token_response(
        400, "application/problem+json",
        R"({"type":"https://errors.example.test/oauth/invalid_grant","title":"Invalid grant","status":400,"detail":"The refresh token was revoked"})",
        TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "invalid_grant");
    CHECK(r.error().description == "The refresh token was revoked");
    CHECK(r.error().classify() == OAuthErrorKind::grant_invalid);
  }
  SECTION("an error extension wins") {
    auto r = parse_token_response(401, "application/problem+json",
                                  R"({"type":"about:blank","title":"Unauthorized","error":"invalid_client"})",
                                  TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "invalid_client");
    CHECK(r.error().description == "Unauthorized");
  }
  SECTION("about:blank falls back to the status, 503 is transient") {
    auto r = parse_token_response(503, "application/problem+json",
                                  R"({"type":"about:blank","title":"Service Unavailable","status":503})", TokenQuirks{},
                                  ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "http_503");
    CHECK(r.error().transient);
    CHECK(r.error().classify() == OAuthErrorKind::transient);
    CHECK(r.error().to_error().code == alumia::ErrorCode::service_unavailable);
  }
  SECTION("problem+json even with status 200 is a failure") {
    auto r = parse_token_response(200, "application/problem+json", R"({"title":"odd","access_token":"x"})",
                                  TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
  }
}

TEST_CASE("token_type is case-insensitive and defaults to Bearer", "[oauth]") {
  auto upper = parse_token_response(200, k_json, R"({"access_token":"a","token_type":"BEARER"})", TokenQuirks{}, ' ');
  REQUIRE(upper.has_value());
  CHECK(upper->token_type == "Bearer");
  auto missing = parse_token_response(200, k_json, R"({"access_token":"a"})", TokenQuirks{}, ' ');
  REQUIRE(missing.has_value());
  CHECK(missing->token_type == "Bearer");
  auto other = parse_token_response(200, k_json, R"({"access_token":"a","token_type":"DPoP"})", TokenQuirks{}, ' ');
  REQUIRE(other.has_value());
  CHECK(other->token_type == "DPoP");
}

TEST_CASE("expires_in forms: number, string, float, junk", "[oauth]") {
  auto as_string = parse_token_response(200, k_json, R"({"access_token":"a","expires_in":"3600"})", TokenQuirks{}, ' ');
  REQUIRE(as_string.has_value());
  CHECK(as_string->expires_in == 3600);
  auto as_float = parse_token_response(200, k_json, R"({"access_token":"a","expires_in":3599.9})", TokenQuirks{}, ' ');
  REQUIRE(as_float.has_value());
  CHECK(as_float->expires_in == 3599);
  auto junk = parse_token_response(200, k_json, R"({"access_token":"a","expires_in":"soon"})", TokenQuirks{}, ' ');
  REQUIRE(junk.has_value());
  CHECK_FALSE(junk->expires_in.has_value());
  auto negative = parse_token_response(200, k_json, R"({"access_token":"a","expires_in":-5})", TokenQuirks{}, ' ');
  REQUIRE(negative.has_value());
  CHECK_FALSE(negative->expires_in.has_value());
  auto rt_life = parse_token_response(
      200, k_json,
      R"({"access_token":"ghu_a","expires_in":28800,"refresh_token":"ghr_b","refresh_token_expires_in":15897600})",
      TokenQuirks{}, ' ');
  REQUIRE(rt_life.has_value());
  CHECK(rt_life->refresh_token_expires_in == 15897600);
}

TEST_CASE("unknown fields are ignored; an empty refresh_token counts as absent", "[oauth]") {
  auto r = parse_token_response(
      200, k_json,
      R"({"access_token":"a","refresh_token":"","x_vendor":{"nested":[1,2]},"warning":"superfluous_charset"})",
      TokenQuirks{}, ' ');
  REQUIRE(r.has_value());
  CHECK_FALSE(r->refresh_token.has_value());
  CHECK(r->extra["x_vendor"]["nested"].size() == 2);
  CHECK_FALSE(r->extra.contains("warning"));
}

TEST_CASE("content type is sniffed when missing or wrong", "[oauth]") {
  auto json_as_text =
      parse_token_response(200, "text/plain", R"({"access_token":"a","scope":"x y"})", TokenQuirks{}, ' ');
  REQUIRE(json_as_text.has_value());
  CHECK(json_as_text->scopes.size() == 2);
  auto form_as_json = parse_token_response(200, k_json, "access_token=b&token_type=bearer", TokenQuirks{}, ' ');
  REQUIRE(form_as_json.has_value());
  CHECK(form_as_json->access_token.view() == "b");
  auto no_type = parse_token_response(200, "", "access_token=c", TokenQuirks{}, ' ');
  REQUIRE(no_type.has_value());
}

TEST_CASE("malformed answers", "[oauth]") {
  SECTION("HTML at 200") {
    auto r = parse_token_response(200, "text/html", "<html><body>Sign in</body></html>", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "malformed_response");
    CHECK(r.error().classify() == OAuthErrorKind::malformed);
    CHECK(r.error().to_error().code == alumia::ErrorCode::service_unavailable);
  }
  SECTION("broken JSON") {
    auto r = parse_token_response(200, k_json, R"({"access_token":"a",)", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "malformed_response");
  }
  SECTION("JSON that is not an object") {
    auto r = parse_token_response(200, k_json, R"(["access_token"])", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
  }
  SECTION("no access_token") {
    auto r = parse_token_response(200, k_json, R"({"token_type":"bearer"})", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "malformed_response");
  }
  SECTION("access_token of the wrong type") {
    auto r = parse_token_response(200, k_json, R"({"access_token":42})", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
  }
  SECTION("empty body") {
    auto r = parse_token_response(200, k_json, "", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
  }
}

TEST_CASE("transport-level failures are transient and never echo the body", "[oauth]") {
  auto bad_gateway =
      parse_token_response(502, "text/html", "<html>Bad Gateway xoxb-should-not-appear</html>", TokenQuirks{}, ' ');
  REQUIRE_FALSE(bad_gateway.has_value());
  CHECK(bad_gateway.error().code == "http_502");
  CHECK(bad_gateway.error().transient);
  CHECK(bad_gateway.error().description.find("xoxb") == std::string::npos);

  auto too_many = parse_token_response(429, k_json, R"({"error":"slow_down"})", TokenQuirks{}, ' ');
  REQUIRE_FALSE(too_many.has_value());
  CHECK(too_many.error().classify() == OAuthErrorKind::transient);

  auto unavailable = parse_token_response(400, k_json, R"({"error":"temporarily_unavailable"})", TokenQuirks{}, ' ');
  REQUIRE_FALSE(unavailable.has_value());
  CHECK(unavailable.error().transient);

  auto unauthorized = parse_token_response(401, "text/plain", "Unauthorized", TokenQuirks{}, ' ');
  REQUIRE_FALSE(unauthorized.has_value());
  CHECK(unauthorized.error().classify() == OAuthErrorKind::client_invalid);
}

TEST_CASE("a non-2xx status is a failure even with tokens in the body", "[oauth]") {
  auto r = parse_token_response(400, k_json, R"({"access_token":"eyJ_real_access_token","refresh_token":"eyJ_rt"})",
                                TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "http_400");
  CHECK(r.error().description.find("eyJ") == std::string::npos);
}

TEST_CASE("HubSpot legacy status/message errors", "[oauth]") {
  auto r = parse_token_response(
      400, k_json, R"({"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","correlationId":"c"})",
      TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "BAD_REFRESH_TOKEN");
  CHECK(r.error().description == "missing or unknown refresh token");
}

TEST_CASE("error descriptions are sanitised", "[oauth]") {
  SECTION("token-like runs are redacted") {
    auto r = parse_token_response(
        400, k_json,
        R"({"error":"invalid_grant","error_description":"refresh token E8Pxto3ak5XACC6iRbIL60j2CmwpDu62suAWjSJWaCS is revoked"})",
        TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().description == "refresh token *** is revoked");
  }
  SECTION("long descriptions are truncated") {
    std::string words;
    for (int i = 0; i < 200; ++i) words += "word ";
    const std::string body = R"({"error":"invalid_request","error_description":")" + words + R"("})";
    auto r = parse_token_response(400, k_json, body, TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().description.size() == alumia::oauth::OAuthError::k_max_description + 3);
    CHECK(r.error().description.ends_with("..."));
  }
  SECTION("codes that are not identifiers are replaced") {
    auto r = parse_token_response(400, k_json, R"({"error":"<script>alert(1)</script>"})", TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == "invalid_error_code");
    CHECK(r.error().classify() == OAuthErrorKind::malformed);
  }
  SECTION("to_error names code and description") {
    auto r = parse_token_response(400, k_json, R"({"error":"invalid_scope","error_description":"unknown scope x"})",
                                  TokenQuirks{}, ' ');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().classify() == OAuthErrorKind::other);
    const alumia::Error e = r.error().to_error();
    CHECK(e.code == alumia::ErrorCode::bad_request);
    CHECK(e.message == "token endpoint answered invalid_scope (HTTP 400): unknown scope x");
  }
}

TEST_CASE("OutboundResponse overload reads Content-Type and Retry-After", "[oauth]") {
  alumia::http::OutboundResponse resp;
  resp.status = 429;
  resp.headers = {{"content-type", "application/json"}, {"retry-after", "17"}};
  resp.body = R"({"error":"rate_limited"})";
  auto r = parse_token_response(resp, TokenQuirks{}, ' ');
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().retry_after_seconds == 17);
  CHECK(r.error().to_error().retry_after_seconds == 17);

  resp.status = 200;
  resp.headers = {{"content-type", "application/x-www-form-urlencoded"}};
  resp.body = "access_token=gho_x&scope=repo&token_type=bearer";
  auto ok = parse_token_response(resp, TokenQuirks{}, ' ');
  REQUIRE(ok.has_value());
  CHECK(ok->scopes == std::vector<std::string>{"repo"});
}

TEST_CASE("PKCE S256: RFC 7636 Appendix B", "[oauth]") {
  constexpr std::string_view k_verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  CHECK(alumia::oauth::pkce_challenge_s256(k_verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  CHECK(alumia::oauth::pkce_verifier_valid(k_verifier));
}

TEST_CASE("PKCE verifiers: generation and validation", "[oauth]") {
  alumia::test::SeededRandom random;
  const std::string v = alumia::oauth::pkce_new_verifier(random);
  CHECK(v.size() == 43);
  CHECK(alumia::oauth::pkce_verifier_valid(v));
  CHECK(alumia::oauth::pkce_challenge_s256(v).size() == 43);
  CHECK_FALSE(alumia::oauth::pkce_verifier_valid(std::string(42, 'a')));
  CHECK(alumia::oauth::pkce_verifier_valid(std::string(128, 'a')));
  CHECK_FALSE(alumia::oauth::pkce_verifier_valid(std::string(129, 'a')));
  CHECK_FALSE(alumia::oauth::pkce_verifier_valid(std::string(42, 'a') + "+"));
  CHECK_FALSE(alumia::oauth::pkce_verifier_valid(std::string(42, 'a') + "="));
}
