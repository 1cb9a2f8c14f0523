#pragma once
// Byte encodings: lowercase hex and base64 (standard, padded; url-safe, unpadded). Decoders accept
// either case (hex) and optional padding (base64), and return nullopt on anything else.
#include <optional>
#include <string>
#include <string_view>

namespace alumia::encoding {

std::string hex_encode(std::string_view bytes);                     // lowercase
std::optional<std::string> hex_decode(std::string_view hex);        // either case; nullopt if invalid
std::string base64_encode(std::string_view bytes);                  // standard alphabet, padded
std::optional<std::string> base64_decode(std::string_view b64);     // standard, padding optional
std::string base64url_encode(std::string_view bytes);               // no padding
std::optional<std::string> base64url_decode(std::string_view b64);  // padding optional

}  // namespace alumia::encoding
