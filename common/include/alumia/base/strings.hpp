#pragma once
// The string helpers every area shares (ASCII only: header names, schemes, tokens), written once.
#include <string>
#include <string_view>
#include <vector>

namespace alumia {

// ASCII lower case.
std::string to_lower(std::string_view s);
// Equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b);
// Space, \t, \r, \n, \f or \v.
bool is_ascii_space(char c);
// Without leading and trailing ASCII whitespace (space, \t, \r, \n, \f, \v).
std::string_view trim(std::string_view s);
// The parts with `separator` between them.
std::string join(const std::vector<std::string>& parts, std::string_view separator);

// Appends `s` as a JSON string literal, quotes included, exactly as nlohmann::json's dump() writes it
// (ensure_ascii off): \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00xx (lower-case hex), the rest
// as they are. Only for ASCII: if `s` has a byte of 0x80 or above, appends nothing and returns false (the
// caller hands such text to nlohmann, which also replaces invalid UTF-8). For hot paths that would
// otherwise build a json value only to dump it.
bool append_json_string_ascii(std::string& out, std::string_view s);

}  // namespace alumia
