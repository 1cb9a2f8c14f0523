#include <alumia/base/text.hpp>

#include <cstdio>
#include <string>

namespace alumia {

Utf8Step decode_utf8(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  const Utf8Step invalid{lead, 1, false};
  if (lead < 0x80) return {lead, 1, true};
  std::size_t length = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, cp = lead & 0x1f, min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, cp = lead & 0x0f, min = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return invalid;  // a continuation byte, an overlong lead (C0/C1) or F5-FF
  }
  if (at + length > text.size()) return invalid;
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned char c = byte(at + i);
    if ((c & 0xc0) != 0x80) return invalid;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return invalid;
  return {cp, length, true};
}

std::optional<std::size_t> find_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Step step = decode_utf8(text, i);
    if (is_control_code_point(step.code_point)) return i;  // for an invalid byte: 0x80-0x9F
    i += step.length;
  }
  return std::nullopt;
}

Status check_no_control_characters(std::string_view text, std::string_view field) {
  const auto at = find_control_character(text);
  if (!at) return {};
  char code[8];
  std::snprintf(code, sizeof code, "0x%02x", static_cast<unsigned char>(text[*at]));
  return fail(ErrorCode::bad_request, std::string(field) + " must not contain control characters (byte " + code +
                                          " at offset " + std::to_string(*at) + "); use printable text");
}

}  // namespace alumia
