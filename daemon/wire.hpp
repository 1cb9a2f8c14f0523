#pragma once
// The daemon's one file of wire shapes: every JSON response body is built here from domain types.

// Webhook endpoints, events and jobs
#include <alumia/webhooks/webhook_service.hpp>

#include <nlohmann/json.hpp>

#include <string_view>

namespace alumia::daemon {

// GET/PATCH /webhook-endpoints/:id and the items of the list; `receive_url` from WebhookService::receive_url.
nlohmann::json endpoint_json(const WebhookEndpointRecord& e, std::string_view receive_url);
// POST /webhook-endpoints: {endpoint, relaySecret, secret (when generated)}; the secrets are shown once.
nlohmann::json created_endpoint_json(const CreatedEndpoint& c, std::string_view receive_url);
// POST /webhook-endpoints/:id/rotate-secret: {endpoint, previousSecretExpiresAt, secret (when generated)}.
nlohmann::json rotated_secret_json(const RotatedSecret& r, std::string_view receive_url);
// An event; `full` adds its headers and body (bodyEncoding utf-8 or base64).
nlohmann::json event_json(const WebhookEvent& e, bool full);
nlohmann::json job_json(const WebhookJob& j);
// The receiver's answer to a stored delivery: {eventId} or {duplicate: true, eventId}.
nlohmann::json receipt_json(const Receipt& r);

}  // namespace alumia::daemon
