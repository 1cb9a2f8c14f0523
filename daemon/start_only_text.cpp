// Start-up code given back once started: start_only_text.hpp says why, how and the contract.
#include "start_only_text.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

// noinline and an asm each, so that each is a function of its own (a section of its own, with
// -ffunction-sections) that the link can place by name, and no two are folded together.
extern "C" __attribute__((noinline, used)) void alumia_start_only_text_begin() { asm volatile("" ::: "memory"); }
extern "C" __attribute__((noinline, used)) void alumia_start_only_text_end() { asm volatile("nop" ::: "memory"); }

namespace alumia::daemon {

std::size_t release_start_only_text() {
  constexpr std::uintptr_t k_max_range = 16u << 20;
  const auto begin = reinterpret_cast<std::uintptr_t>(&alumia_start_only_text_begin);
  const auto end = reinterpret_cast<std::uintptr_t>(&alumia_start_only_text_end);
  if (end <= begin || end - begin > k_max_range) return 0;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t first = (begin + page - 1) & ~(page - 1);  // whole pages only: the neighbours stay
  const std::uintptr_t last = end & ~(page - 1);
  if (last <= first) return 0;
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

}  // namespace alumia::daemon
