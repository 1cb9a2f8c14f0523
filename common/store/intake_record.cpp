// The intake log's record of one accepted delivery: encode and decode (intake_record.hpp).
#include "intake_record.hpp"

#include <cstdint>
#include <cstring>

namespace alumia::intake_record {
namespace {

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

void put_str(std::string& out, const std::string& v) {
  put_u32(out, static_cast<uint32_t>(v.size()));
  out += v;
}

// Reads fields off the front of a record; every read fails, and changes nothing, past its end.
class Reader {
 public:
  explicit Reader(std::string_view in) : m_in(in) {}
  bool take(void* dst, std::size_t n) {
    if (m_in.size() - m_at < n) return false;
    std::memcpy(dst, m_in.data() + m_at, n);
    m_at += n;
    return true;
  }
  bool str(std::string& dst) {
    uint32_t n = 0;
    if (!take(&n, sizeof n) || m_in.size() - m_at < n) return false;
    dst.assign(m_in.data() + m_at, n);
    m_at += n;
    return true;
  }
  bool list(std::vector<std::string>& dst) {
    uint32_t n = 0;
    if (!take(&n, sizeof n) || n > m_in.size()) return false;  // a count no record this size can hold
    dst.resize(n);
    for (auto& s : dst)
      if (!str(s)) return false;
    return true;
  }
  bool at_end() const { return m_at == m_in.size(); }

 private:
  std::string_view m_in;
  std::size_t m_at = 1;  // after the version byte
};

}  // namespace

std::string encode(const IngestRequest& r) {
  std::string out;
  out.reserve(r.body.size() + r.headers.size() + 256);
  out.push_back(k_version);
  const std::string provider(to_string(r.provider));  // the record keeps the provider's name
  for (const auto* f : {&r.endpoint_id, &r.user_id, &provider, &r.event_key, &r.event_type, &r.headers, &r.body,
                        &r.event_id, &r.job_id})
    put_str(out, *f);
  out.append(reinterpret_cast<const char*>(&r.received_at), sizeof r.received_at);
  for (const auto* list : {&r.alias_keys, &r.item_keys}) {
    put_u32(out, static_cast<uint32_t>(list->size()));
    for (const auto& k : *list) put_str(out, k);
  }
  return out;
}

std::optional<IngestRequest> decode(std::string_view in) {
  if (in.empty() || in[0] != k_version) return std::nullopt;
  Reader read(in);
  IngestRequest r;
  std::string provider;
  for (auto* f : {&r.endpoint_id, &r.user_id, &provider, &r.event_key, &r.event_type, &r.headers, &r.body, &r.event_id,
                  &r.job_id})
    if (!read.str(*f)) return std::nullopt;
  const auto known = parse_provider(provider);
  if (!known) return std::nullopt;
  r.provider = *known;
  if (!read.take(&r.received_at, sizeof r.received_at)) return std::nullopt;
  for (auto* list : {&r.alias_keys, &r.item_keys})
    if (!read.list(*list)) return std::nullopt;
  if (!read.at_end()) return std::nullopt;
  return r;
}

}  // namespace alumia::intake_record
