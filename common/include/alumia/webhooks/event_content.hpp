#pragma once
// Reading a stored event: its headers as the receiver stored them, and whether its body is text. The
// API's event JSON (daemon/wire.cpp) and the relay's POST body (relay_message.cpp) both show them.
#include <alumia/store/webhook_store.hpp>

#include <map>
#include <string>
#include <string_view>

namespace alumia {

// An event's stored headers (a JSON array of [name, value], secrets removed) by name, a repeated
// name's values joined with ", ".
std::map<std::string, std::string> event_headers(const WebhookEvent& event);
// Whether the body shows as text (valid UTF-8, as a JSON string can carry it); else it goes as base64.
bool body_is_text(std::string_view body);

}  // namespace alumia
