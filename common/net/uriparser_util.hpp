#pragma once
// uriparser as common/net uses it (url.cpp, public_base_url.cpp), private to common/net: a URI parsed
// into an object that frees itself, and a text range of it as a string.
#include <uriparser/Uri.h>

#include <cstddef>
#include <expected>
#include <memory>
#include <string>

namespace alumia::url::detail {

struct UriFree {
  void operator()(UriUriA* u) const {
    uriFreeUriMembersA(u);
    delete u;
  }
};
using UriPtr = std::unique_ptr<UriUriA, UriFree>;

// `text` parsed as one URI; when it is none, the offset of the character where parsing stopped.
inline std::expected<UriPtr, std::size_t> parse_uri(const std::string& text) {
  UriPtr uri(new UriUriA{});
  const char* error_pos = nullptr;
  if (uriParseSingleUriA(uri.get(), text.c_str(), &error_pos) != URI_SUCCESS)
    return std::unexpected(error_pos ? static_cast<std::size_t>(error_pos - text.c_str()) : 0);
  return uri;
}

// The text of a range; empty when the range is absent.
inline std::string range(const UriTextRangeA& r) {
  if (r.first == nullptr || r.afterLast == nullptr) return {};
  return std::string(r.first, static_cast<std::size_t>(r.afterLast - r.first));
}

}  // namespace alumia::url::detail
