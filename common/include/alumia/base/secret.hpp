#pragma once
// Key material lives in types that wipe themselves and never print their contents.
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace alumia {

void secure_wipe(void* p, std::size_t n);  // OPENSSL_cleanse

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t n) : m_bytes(n) {}
  SecretBytes(const unsigned char* p, std::size_t n) : m_bytes(p, p + n) {}
  explicit SecretBytes(std::string_view s) : m_bytes(s.begin(), s.end()) {}
  SecretBytes(const SecretBytes&) = default;
  SecretBytes& operator=(const SecretBytes& o) {
    if (this != &o) {
      wipe();
      m_bytes = o.m_bytes;
    }
    return *this;
  }
  SecretBytes(SecretBytes&& o) noexcept : m_bytes(std::move(o.m_bytes)) {}
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      wipe();
      m_bytes = std::move(o.m_bytes);
    }
    return *this;
  }
  ~SecretBytes() { wipe(); }

  unsigned char* data() { return m_bytes.data(); }
  const unsigned char* data() const { return m_bytes.data(); }
  std::size_t size() const { return m_bytes.size(); }
  bool empty() const { return m_bytes.empty(); }
  std::string_view view() const { return {reinterpret_cast<const char*>(m_bytes.data()), m_bytes.size()}; }
  std::string str() const { return std::string(view()); }  // caller must treat the copy as secret

 private:
  void wipe() {
    if (!m_bytes.empty()) secure_wipe(m_bytes.data(), m_bytes.size());
  }
  std::vector<unsigned char> m_bytes;
};

inline std::ostream& operator<<(std::ostream& os, const SecretBytes&) { return os << "***"; }

// Wipes a std::string that held a secret (best effort: the buffer we own).
inline void wipe_string(std::string& s) {
  if (!s.empty()) secure_wipe(s.data(), s.size());
  s.clear();
}

}  // namespace alumia
