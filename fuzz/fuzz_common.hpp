#pragma once
// What every fuzz target shares: how a property that does not hold is reported. A finding aborts, so
// libFuzzer keeps the input (crash-<sha1> under the artifact prefix) and `make fuzz` fails.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace alumia::fuzz {

[[noreturn]] inline void finding(std::string_view target, std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "%.*s: %.*s: %.*s\n", static_cast<int>(target.size()), target.data(),
               static_cast<int>(what.size()), what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace alumia::fuzz
