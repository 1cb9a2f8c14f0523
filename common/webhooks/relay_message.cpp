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

std::string relay_body(const WebhookEvent& e) {
  const bool text = body_is_text(e.body);
  json doc{{"id", e.id},
           {"endpointId", e.endpoint_id},
           {"provider", to_string(e.provider)},
           {"eventKey", e.event_key},
           {"eventType", e.event_type},
           {"receivedAt", format_time_ms(e.received_at)},
           {"headers", event_headers(e)},
           {"body", text ? e.body : encoding::base64_encode(e.body)},
           {"bodyEncoding", text ? "utf-8" : "base64"}};
  // Providers mostly send JSON: hand it over parsed as well, so consumers need not parse twice.
  if (text) {
    json parsed = json::parse(e.body, nullptr, false);
    if (!parsed.is_discarded()) doc["payload"] = std::move(parsed);
  }
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
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
