// What the relay POSTs: the event's JSON document, its headers and its signature (SPEC §7).
#include <alumia/base/clock.hpp>
#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/webhooks/relay_message.hpp>

#include <nlohmann/json.hpp>

namespace alumia {

using nlohmann::json;

std::string relay_signature(std::string_view secret, int64_t unix_time, std::string_view body) {
  const std::string t = std::to_string(unix_time);
  const std::string signed_text = t + "." + std::string(body);
  return "t=" + t + ",v1=" + encoding::hex_encode(crypto::hmac_sha256(secret, signed_text));
}

namespace {

// `text` as a JSON string, appended to `out` (invalid UTF-8 replaced, as the document's dump did).
void append_json_string(std::string& out, std::string_view text) {
  out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// `body` without JSON's insignificant whitespace and a UTF-8 byte order mark (which the parser skips but
// a JSON document may not carry inside it) around it.
std::string_view json_document_text(std::string_view body) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return body.substr(first, body.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

// Written field by field, in the order nlohmann::json's sorted object gave (the document was built as a
// json object and dumped): each string escaped once and the payload checked by the parser without a DOM
// (json::accept) and copied as sent. Parsing the body into a DOM and dumping it again, and escaping the
// body a second time to learn whether it is UTF-8, were a fifth of the relay's CPU (perf, bench/relay.sh).
std::string relay_body(const WebhookEvent& e) {
  const bool text = body_is_text(e.body);
  // Providers mostly send JSON: hand it over as JSON as well, so consumers need not parse twice.
  const bool payload = text && json::accept(e.body);
  std::string out;
  out.reserve(e.body.size() * (payload ? 2 : 1) + e.headers.size() + 512);
  out += "{\"body\":";
  if (text) append_json_string(out, e.body);
  else append_json_string(out, encoding::base64_encode(e.body));
  out += text ? ",\"bodyEncoding\":\"utf-8\"" : ",\"bodyEncoding\":\"base64\"";
  out += ",\"endpointId\":";
  append_json_string(out, e.endpoint_id);
  out += ",\"eventKey\":";
  append_json_string(out, e.event_key);
  out += ",\"eventType\":";
  append_json_string(out, e.event_type);
  out += ",\"headers\":{";
  bool first = true;
  for (const auto& [name, value] : event_headers(e)) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, name);
    out += ':';
    append_json_string(out, value);
  }
  out += "},\"id\":";
  append_json_string(out, e.id);
  if (payload) {
    out += ",\"payload\":";
    out += json_document_text(e.body);
  }
  out += ",\"provider\":";
  append_json_string(out, to_string(e.provider));
  out += ",\"receivedAt\":";
  append_json_string(out, format_time_ms(e.received_at));
  out += '}';
  return out;
}

http::OutboundRequest relay_request(const WebhookEvent& event, const WebhookJob& job, const RelayTarget& target,
                                    int64_t unix_time, std::chrono::milliseconds timeout) {
  http::OutboundRequest req;
  req.method = "POST";
  req.url = target.url;
  req.body = relay_body(event);
  req.content_type = "application/json";
  req.timeout = timeout;
  req.headers = {{"Alumia-Event-Id", event.id},
                 {"Alumia-Event-Key", event.event_key},
                 {"Alumia-Job-Id", job.id},
                 {"Alumia-Signature", relay_signature(target.secret.view(), unix_time, req.body)}};
  return req;
}

}  // namespace alumia
