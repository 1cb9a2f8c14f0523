// The terminal is not the server's (issue 10 item 5), against the real daemon and CLI: a signed
// delivery whose headers carry an OSC 52 sequence is stored exactly, shown exactly by --json, and
// never reaches the terminal raw from human output; names people give (connection and endpoint
// labels, API key names) refuse control characters.
#include "cli_helpers.hpp"
#include "fake_telegram.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// OSC 52: "set the clipboard to 'hello'" in many terminals.
const std::string k_osc52 = "push\x1b]52;c;aGVsbG8=\x07";

// ESC, BEL, any other C0 but the layout's newline and tab, DEL, and C1 (raw or in UTF-8).
bool has_control_byte(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if ((u < 0x20 && u != '\n' && u != '\t') || u == 0x7f) return true;
    if (u == 0xc2 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xe0) == 0x80) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("terminal: an OSC 52 sequence in a signed delivery's event header is stored exactly, shown escaped",
          "[terminal][webhooks]") {
  TempDir dir;
  Daemon d(dir.path(), daemon_options());
  const json created = create_endpoint(d, {{"provider", "github"}, {"label", "repo hooks"}});
  Signer s;
  s.provider = "github";
  s.secret = created["secret"];
  s.endpoint_id = created["endpoint"]["id"];
  Delivery dl = make_delivery(s, 1);
  for (auto& [name, value] : dl.headers)
    if (name == "X-GitHub-Event") value = k_osc52;
  // A raw exchange: the provider signs the body, and the header travels as sent.
  std::string request = "POST " + receive_path("github", s.endpoint_id) +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(d.port()) +
                        "\r\nContent-Length: " + std::to_string(dl.body.size()) + "\r\n";
  for (const auto& [name, value] : dl.headers) request += name + ": " + value + "\r\n";
  request += "\r\n" + dl.body;
  const RawReply r = raw_exchange(d.port(), request);
  INFO(r.head << r.body);
  REQUIRE(r.status == 200);
  const std::string event_id = json::parse(r.body)["data"]["eventId"];

  // The API and --json keep the value exactly as received.
  const json ev = d.api("GET", "/api/v1/connector-events/" + event_id).json()["data"];
  CHECK(ev["eventType"] == k_osc52);
  CHECK(ev["headers"]["x-github-event"] == k_osc52);
  const json shown_json = json_out(cli(d, {"--json", "events", "show", event_id}));
  CHECK(shown_json["eventType"] == k_osc52);
  CHECK(shown_json["headers"]["x-github-event"] == k_osc52);
  const json listed_json = json_out(cli(d, {"--json", "events", "list"}));
  CHECK(listed_json["items"][0]["eventType"] == k_osc52);

  // Human output: no ESC or BEL, and the escape shows what was there.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"events", "list"}, {"events", "show", event_id}, {"events", "tail"}}) {
    const ProcessResult out = cli(d, args);
    INFO(args[1] << ":\n" << out.out << out.err);
    REQUIRE_EXIT(out, 0);
    CHECK_FALSE(has_control_byte(out.out));
    CHECK_FALSE(has_control_byte(out.err));
    CHECK(out.out.find("push\\x1b]52;c;aGVsbG8=\\x07") != std::string::npos);
  }
  stop_clean(d);
}

TEST_CASE("terminal: labels and key names with control characters are BAD_REQUEST and store nothing", "[terminal]") {
  TempDir dir;
  Daemon d(dir.path(), daemon_options());
  const json endpoint = create_endpoint(d, {{"provider", "github"}, {"label", "fine"}});
  const std::string endpoint_id = endpoint["endpoint"]["id"];
  for (const std::string& bad : {std::string("nul\0here", 8), std::string("esc\x1b]52;c;aGVsbG8=\x07"),
                                 std::string("line\nbreak"), std::string("c1 \xc2\x9b")}) {
    INFO(json(bad).dump());
    const auto check_refused = [&](const HttpReply& r) {
      INFO(r.body);
      CHECK(r.status == 400);
      CHECK(r.json()["error"]["code"] == "BAD_REQUEST");
      CHECK(r.json()["error"]["message"].get<std::string>().find("control characters") != std::string::npos);
    };
    check_refused(d.api("POST", "/api/v1/connections", json{{"connectorSlug", "telegram"}, {"label", bad}}.dump()));
    check_refused(d.api("POST", "/api/v1/webhook-endpoints", json{{"provider", "github"}, {"label", bad}}.dump()));
    check_refused(d.api("PATCH", "/api/v1/webhook-endpoints/" + endpoint_id, json{{"label", bad}}.dump()));
    check_refused(d.api("POST", "/api/v1/api-keys", json{{"name", bad}, {"scopes", {"connections"}}}.dump()));
  }
  // Nothing was created or changed.
  CHECK(d.api("GET", "/api/v1/connections").json()["data"]["items"].empty());
  CHECK(d.api("GET", "/api/v1/webhook-endpoints").json()["data"]["items"].size() == 1);
  CHECK(endpoint_of(d, endpoint_id)["label"] == "fine");
  CHECK(d.api("GET", "/api/v1/api-keys").json()["data"]["items"].size() == 1);  // the owner's
  // Printable text, non-ASCII included, is a label like any other.
  auto ok = d.api("PATCH", "/api/v1/webhook-endpoints/" + endpoint_id, json{{"label", "dépôt — 日本"}}.dump());
  CHECK(ok.status == 200);
  stop_clean(d);
}

TEST_CASE("terminal: an account name from the provider with an escape sequence is shown escaped", "[terminal]") {
  const std::string token = "123456789:AAEterminalterminalterminal_-0123456";
  // The provider's side of the connection says who the account is; a bot can be named anything.
  FakeTelegram telegram({token},
                        "bot\x1b]52;c;aGVsbG8=\x07\xc2\x9b"
                        "name");  // ESC, BEL, C1 CSI
  TempDir dir;
  Daemon d(dir.path(), daemon_options({{"ALUMIA_TELEGRAM_API_BASE", telegram.base()}}));
  const ProcessResult connect = cli(d, {"connect", "telegram", "--from-stdin"}, json{{"bot_token", token}}.dump());
  REQUIRE_EXIT(connect, 0);
  CHECK_FALSE(has_control_byte(connect.out));
  const json listed = json_out(cli(d, {"--json", "connections", "list"}));
  REQUIRE(listed["items"].size() == 1);
  const std::string id = listed["items"][0]["id"];
  CHECK(listed["items"][0]["accountLabel"] ==
        "@bot\x1b]52;c;aGVsbG8=\x07\xc2\x9b"
        "name");  // JSON: exact
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"connections", "list"}, {"connections", "show", id}}) {
    const ProcessResult out = cli(d, args);
    INFO(out.out << out.err);
    REQUIRE_EXIT(out, 0);
    CHECK_FALSE(has_control_byte(out.out));
    CHECK(out.out.find("@bot\\x1b]52;c;aGVsbG8=\\x07\\u009bname") != std::string::npos);
  }
  stop_clean(d);
}
