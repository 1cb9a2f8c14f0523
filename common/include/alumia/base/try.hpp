#pragma once
// TRY(expr): the value of a Result (nothing for a Status), or return its error from the enclosing
// function, which returns a Result or Status itself (ccache's TRY; Rust's `?`). It replaces
//   auto x = f();
//   if (!x) return std::unexpected(x.error());
// with `auto x = TRY(f());`, and `if (auto st = g(); !st) return std::unexpected(st.error());` with
// `TRY(g());`. A GCC/Clang statement expression (`__extension__` keeps -Wpedantic quiet).
#include <expected>
#include <type_traits>
#include <utility>

namespace alumia::detail {

// The value moved out of a Result known to hold one (void for a Status).
template <typename T, typename E>
T try_take(std::expected<T, E>& result) {
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace alumia::detail

#define TRY(...)                                                                            \
  __extension__({                                                                           \
    auto alumia_try_result_ = (__VA_ARGS__);                                                \
    if (!alumia_try_result_) return std::unexpected(std::move(alumia_try_result_).error()); \
    ::alumia::detail::try_take(alumia_try_result_);                                         \
  })
