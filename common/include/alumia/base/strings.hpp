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

}  // namespace alumia
