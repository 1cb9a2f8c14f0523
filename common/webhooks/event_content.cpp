// Reading a stored event's headers and body (the receiver wrote them: webhook_receiver.cpp).
#include <alumia/webhooks/event_content.hpp>

#include <nlohmann/json.hpp>

namespace alumia {

using nlohmann::json;

std::map<std::string, std::string> event_headers(const WebhookEvent& e) {
  std::map<std::string, std::string> headers;
  const json raw = json::parse(e.headers, nullptr, false);
  if (raw.is_array())
    for (const auto& h : raw)
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) {
        const std::string name = h[0].get<std::string>();
        if (auto it = headers.find(name); it != headers.end()) it->second += ", " + h[1].get<std::string>();
        else headers.emplace(name, h[1].get<std::string>());
      }
  return headers;
}

bool body_is_text(std::string_view body) {
  // The JSON serializer's own UTF-8 check: text it accepts is what a JSON string can carry.
  try {
    (void)json(std::string(body)).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

}  // namespace alumia
