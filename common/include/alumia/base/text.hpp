#pragma once
// Text that people give names with (connection labels, endpoint labels, API key names) is shown in
// terminals, so it may not carry control characters; the CLI's terminal sanitizer decodes with the
// same UTF-8 step.
#include <alumia/base/error.hpp>

#include <cstddef>
#include <optional>
#include <string_view>

namespace alumia {

// One step of a UTF-8 walk at `at` (< text.size()): a well-formed sequence (shortest form, no
// surrogates, at most U+10FFFF) gives its code point and length; anything else gives valid=false,
// length 1 and the byte itself as code_point.
struct Utf8Step {
  char32_t code_point = 0;
  std::size_t length = 1;
  bool valid = false;
};
Utf8Step decode_utf8(std::string_view text, std::size_t at);

// C0 (U+0000-U+001F), DEL (U+007F) or C1 (U+0080-U+009F).
constexpr bool is_control_code_point(char32_t c) { return c < 0x20 || (c >= 0x7f && c <= 0x9f); }

// The byte offset of the first control character: a control code point, or a byte 0x80-0x9F that is
// not part of a valid UTF-8 sequence (some terminals read it as an 8-bit C1 code). nullopt when none.
std::optional<std::size_t> find_control_character(std::string_view text);

// BAD_REQUEST naming `field` and where the control character is, when `text` has one.
Status check_no_control_characters(std::string_view text, std::string_view field);

}  // namespace alumia
