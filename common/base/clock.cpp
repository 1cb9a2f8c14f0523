#include <algorithm>
#include <alumia/base/clock.hpp>
#include <alumia/base/encoding.hpp>
#include <array>
#include <atomic>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace alumia {

std::chrono::system_clock::time_point SystemClock::now() const { return std::chrono::system_clock::now(); }

void SystemRandom::fill(unsigned char* out, std::size_t n) {
  if (n == 0) return;
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fputs("alumia: fatal: the system random generator failed\n", stderr);
    std::abort();
  }
}

namespace {
// Bumped in a forked child (pthread_atfork), so that its pools of id bits are refilled rather than
// repeat the parent's: cheaper than a getpid() system call per id, which the request thread made twice
// a delivery. A child made without fork()'s handlers (posix_spawn) execs at once and never draws ids.
std::atomic<unsigned> g_fork_generation{0};
void on_fork_child() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

void SystemRandom::fill_id_bits(unsigned char* out, std::size_t n) {
  static const bool watching_forks = ::pthread_atfork(nullptr, nullptr, &on_fork_child) == 0;
  struct Pool {
    unsigned char bytes[512];
    std::size_t used = sizeof bytes;
    unsigned generation = 0;
  };
  thread_local Pool pool;
  if (n > sizeof pool.bytes || !watching_forks) return fill(out, n);
  const unsigned generation = g_fork_generation.load(std::memory_order_relaxed);
  if (pool.used + n > sizeof pool.bytes ||
      pool.generation != generation) {  // a forked child never reuses the parent's bytes
    fill(pool.bytes, sizeof pool.bytes);
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out, pool.bytes + pool.used, n);
  OPENSSL_cleanse(pool.bytes + pool.used, n);
  pool.used += n;
}

std::vector<unsigned char> Random::bytes(std::size_t n) {
  std::vector<unsigned char> v(n);
  fill(v.data(), n);
  return v;
}

std::string Random::hex(std::size_t n_bytes) {
  auto b = bytes(n_bytes);
  return encoding::hex_encode({reinterpret_cast<const char*>(b.data()), b.size()});
}

std::string Random::base64url(std::size_t n_bytes) {
  auto b = bytes(n_bytes);
  return encoding::base64url_encode({reinterpret_cast<const char*>(b.data()), b.size()});
}

namespace {
// 16 bytes with version and variant set → 8-4-4-4-12 lowercase hex, written in place.
std::string format_uuid(std::array<unsigned char, 16>& b, unsigned version) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | (version << 4));
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;  // the dashes
    out[at++] = k_hex[b[i] >> 4];
    out[at++] = k_hex[b[i] & 0xf];
  }
  return out;
}
}  // namespace

std::string Random::uuid_v4() {
  std::array<unsigned char, 16> b{};
  fill(b.data(), b.size());
  return format_uuid(b, 4);
}

std::string Random::uuid_v7(int64_t unix_ms) {
  // The next (ms, counter) after the last one handed out, and never before this millisecond.
  const uint64_t now = static_cast<uint64_t>(std::max<int64_t>(unix_ms, 0)) << 12;
  uint64_t last = m_v7_last.load(std::memory_order_relaxed);
  uint64_t next = 0;
  do {
    next = std::max(now, last + 1);
  } while (!m_v7_last.compare_exchange_weak(last, next, std::memory_order_relaxed));
  const uint64_t ms = next >> 12;
  const auto counter = static_cast<unsigned>(next & 0xfff);
  std::array<unsigned char, 16> b{};
  fill_id_bits(b.data() + 8, 8);  // rand_b; format_uuid sets the variant bits
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(counter >> 8);  // format_uuid puts the version in the high nibble
  b[7] = static_cast<unsigned char>(counter & 0xff);
  return format_uuid(b, 7);
}

uint64_t Random::below(uint64_t bound) {
  if (bound <= 1) return 0;
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    uint64_t v = 0;
    fill(reinterpret_cast<unsigned char*>(&v), sizeof v);
    if (v < limit) return v % bound;
  }
}

std::string format_time_ms(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  const int ms = static_cast<int>(unix_ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string format_time(std::chrono::system_clock::time_point tp) {
  return format_time_ms(std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count());
}

}  // namespace alumia
