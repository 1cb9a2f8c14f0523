#pragma once
// Time and randomness are injected: production code uses SystemClock / SystemRandom, tests use
// FakeClock / seeded randomness from tests/support. Nothing else reads the clock or RAND_bytes.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace alumia {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  int64_t now_unix() const {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  }
  int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
};

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(unsigned char* out, std::size_t n) = 0;
  // The random bits of identifiers (unpredictable, not secret): fill() unless an implementation
  // has a cheaper source.
  virtual void fill_id_bits(unsigned char* out, std::size_t n) { fill(out, n); }
  std::vector<unsigned char> bytes(std::size_t n);
  std::string hex(std::size_t n_bytes);        // n_bytes random bytes, lowercase hex
  std::string base64url(std::size_t n_bytes);  // n_bytes random bytes, base64url without padding
  std::string uuid_v4();
  // RFC 9562 version 7: 48 bits of unix milliseconds first, so ids made later sort later. Rows keyed
  // by them are appended at the right edge of their indexes instead of landing on random pages.
  // Monotonic (RFC 9562 §6.2, method 1): the 12 bits after the version are a counter within the
  // millisecond, so two ids of one millisecond sort in the order they were made (lists that are
  // "newest first" keep the arrival order); past 4,096 in a millisecond the timestamp runs ahead.
  std::string uuid_v7(int64_t unix_ms);
  // Uniform in [0, bound).
  uint64_t below(uint64_t bound);

 private:
  std::atomic<uint64_t> m_v7_last{0};  // (unix ms << 12) | counter of the last uuid_v7
};

class SystemRandom final : public Random {
 public:
  void fill(unsigned char* out, std::size_t n) override;  // RAND_bytes; aborts on failure
  // RAND_bytes drawn 512 bytes at a time per thread: two ids per webhook delivery cost two
  // RAND_bytes calls otherwise (4% of the daemon's CPU at ingest). Never used for secrets.
  void fill_id_bits(unsigned char* out, std::size_t n) override;
};

// RFC 3339 UTC with milliseconds, e.g. 2026-11-29T03:25:19.123Z.
std::string format_time(std::chrono::system_clock::time_point tp);
std::string format_time_ms(int64_t unix_ms);

}  // namespace alumia
