// The daemon's one file of wire shapes (SPEC §3 envelope data, §7 webhooks).
#include "wire.hpp"

// Webhook endpoints, events and jobs
#include <alumia/base/clock.hpp>
#include <alumia/base/encoding.hpp>
#include <alumia/webhooks/event_content.hpp>

namespace alumia::daemon {
namespace {

nlohmann::json webhook_time_or_null(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(format_time_ms(*v)) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json endpoint_json(const WebhookEndpointRecord& e, std::string_view receive_url) {
  using nlohmann::json;
  return json{{"id", e.id},
              {"provider", e.provider},
              {"connectionId", e.connection_id ? json(*e.connection_id) : json(nullptr)},
              {"label", e.label},
              {"status", e.deleted_at ? "disabled" : e.status},
              {"receiveUrl", receive_url},
              {"relayTo", e.relay_to ? json(*e.relay_to) : json(nullptr)},
              {"maxBodyBytes", e.max_body_bytes},
              {"counts",
               {{"received", e.received},
                {"duplicates", e.duplicates},
                {"rejected", e.rejected},
                {"verificationFailures", e.verification_failures}}},
              {"lastDeliveryAt", webhook_time_or_null(e.last_delivery_at)},
              // The owner's view of the receiver's last refusal (the sender got a generic answer).
              {"lastError", e.last_error ? json{{"code", e.last_error->code},
                                                {"message", e.last_error->message},
                                                {"at", format_time_ms(e.last_error->at)}}
                                         : json(nullptr)},
              {"createdAt", format_time_ms(e.created_at)}};
}

nlohmann::json created_endpoint_json(const CreatedEndpoint& c, std::string_view receive_url) {
  nlohmann::json out{{"endpoint", endpoint_json(c.endpoint, receive_url)}, {"relaySecret", c.relay_secret.str()}};
  if (c.secret) out["secret"] = c.secret->str();
  return out;
}

nlohmann::json rotated_secret_json(const RotatedSecret& r, std::string_view receive_url) {
  nlohmann::json out{{"endpoint", endpoint_json(r.endpoint, receive_url)},
                     {"previousSecretExpiresAt", webhook_time_or_null(r.endpoint.previous_secret_expires_at)}};
  if (r.secret) out["secret"] = r.secret->str();
  return out;
}

nlohmann::json event_json(const WebhookEvent& e, bool full) {
  using nlohmann::json;
  json j{{"id", e.id},
         {"endpointId", e.endpoint_id},
         {"provider", e.provider},
         {"eventKey", e.event_key},
         {"eventType", e.event_type},
         {"receivedAt", format_time_ms(e.received_at)},
         {"jobState", e.job_state.empty() ? json(nullptr) : json(e.job_state)}};
  if (full) {
    j["headers"] = event_headers(e);
    // Valid UTF-8 shows as text; anything else as base64 (bodyEncoding says which).
    const bool text = body_is_text(e.body);
    j["body"] = text ? e.body : encoding::base64_encode(e.body);
    j["bodyEncoding"] = text ? "utf-8" : "base64";
  }
  return j;
}

nlohmann::json job_json(const WebhookJob& j) {
  using nlohmann::json;
  return json{{"id", j.id},
              {"eventId", j.event_id},
              {"endpointId", j.endpoint_id},
              {"state", j.state},
              {"attempts", j.attempts},
              {"nextAttemptAt",
               (j.state == "queued" || j.state == "failed") ? json(format_time_ms(j.next_attempt_at)) : json(nullptr)},
              {"lastStatus", j.last_status ? json(*j.last_status) : json(nullptr)},
              {"lastError", j.last_error ? json(*j.last_error) : json(nullptr)},
              {"createdAt", format_time_ms(j.created_at)},
              {"updatedAt", format_time_ms(j.updated_at)},
              {"finishedAt", webhook_time_or_null(j.finished_at)}};
}

nlohmann::json receipt_json(const Receipt& r) {
  if (r.duplicate) return nlohmann::json{{"duplicate", true}, {"eventId", r.event_id}};
  return nlohmann::json{{"eventId", r.event_id}};
}

}  // namespace alumia::daemon
