// Reading a stored event's headers and body (the receiver wrote them: webhook_receiver.cpp).
#include <alumia/base/text.hpp>
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
  // Valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF) is what a JSON string can carry: the
  // serializer refuses exactly the rest. Checked by walking it, ASCII a byte at a time; escaping a copy
  // only to see whether the serializer throws cost as much as escaping it for the document.
  for (std::size_t i = 0; i < body.size();) {
    if (static_cast<unsigned char>(body[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = decode_utf8(body, i);
    if (!step.valid) return false;
    i += step.length;
  }
  return true;
}

}  // namespace alumia
