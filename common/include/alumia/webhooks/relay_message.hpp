#pragma once
// What the relay worker POSTs (SPEC §7): the event as one JSON document, with Alumia-Event-Id,
// Alumia-Event-Key, Alumia-Job-Id and Alumia-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "t.body"
// under the endpoint's relay secret>). The relay owns this shape; the API's event JSON is the
// daemon's (daemon/wire.cpp), and the two may differ.
#include <alumia/net/http.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/event_content.hpp>
#include <alumia/webhooks/relay_target.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace alumia {

// Alumia-Signature value for `body` signed at `unix_time`.
std::string relay_signature(std::string_view secret, int64_t unix_time, std::string_view body);
// The JSON document POSTed for an event: id, endpointId, provider, eventKey, eventType, receivedAt,
// headers, body with bodyEncoding (utf-8 or base64) and, when the body is JSON, payload: the body's JSON
// text as sent (checked by the parser, not re-serialized; a leading byte order mark dropped).
std::string relay_body(const WebhookEvent& event);
// The whole POST of `job`'s `event` to `target`, signed at `unix_time`.
http::OutboundRequest relay_request(const WebhookEvent& event, const WebhookJob& job, const RelayTarget& target,
                                    int64_t unix_time, std::chrono::milliseconds timeout);

}  // namespace alumia
