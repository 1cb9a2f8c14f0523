#include "fakes.hpp"

#include <utility>

namespace alumia::test {

void SeededRandom::fill(unsigned char* out, std::size_t n) {
  std::lock_guard lock(m_mutex);
  for (std::size_t i = 0; i < n; ++i) {
    if (m_left == 0) {
      m_state += 0x9e3779b97f4a7c15ULL;
      uint64_t z = m_state;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      m_word = z ^ (z >> 31);
      m_left = 8;
    }
    out[i] = static_cast<unsigned char>(m_word & 0xff);
    m_word >>= 8;
    --m_left;
  }
}

http::OutboundResponse http_reply(int status, std::string body, http::Headers headers) {
  http::OutboundResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

ScriptedHttp& ScriptedHttp::expect(std::string method, std::string url, Result<http::OutboundResponse> reply) {
  std::lock_guard lock(m_mutex);
  m_script.push_back({std::move(method), std::move(url), std::move(reply)});
  return *this;
}

ScriptedHttp& ScriptedHttp::expect(std::string method, std::string url, int status, std::string body,
                                   http::Headers headers) {
  return expect(std::move(method), std::move(url), http_reply(status, std::move(body), std::move(headers)));
}

ScriptedHttp& ScriptedHttp::reply(Result<http::OutboundResponse> reply) { return expect({}, {}, std::move(reply)); }

Result<http::OutboundResponse> ScriptedHttp::send(const http::OutboundRequest& request) {
  std::lock_guard lock(m_mutex);
  m_sent.push_back(request);
  if (m_script.empty()) {
    ++m_unexpected;
    return fail(ErrorCode::service_unavailable,
                "no network in unit tests (no scripted reply for " + request.method + " " + request.url + ")");
  }
  const Expectation& next = m_script.front();
  if ((!next.method.empty() && next.method != request.method) || (!next.url.empty() && next.url != request.url)) {
    ++m_unexpected;
    return fail(ErrorCode::service_unavailable, "unexpected request " + request.method + " " + request.url +
                                                    " (the script expects " + next.method + " " + next.url + ")");
  }
  auto reply = next.reply;
  m_script.pop_front();
  return reply;
}

std::vector<http::OutboundRequest> ScriptedHttp::sent() const {
  std::lock_guard lock(m_mutex);
  return m_sent;
}

std::size_t ScriptedHttp::sent_count() const {
  std::lock_guard lock(m_mutex);
  return m_sent.size();
}

std::vector<std::string> ScriptedHttp::sent_urls() const {
  std::lock_guard lock(m_mutex);
  std::vector<std::string> urls;
  for (const auto& r : m_sent) urls.push_back(r.url);
  return urls;
}

std::size_t ScriptedHttp::unexpected() const {
  std::lock_guard lock(m_mutex);
  return m_unexpected;
}

std::size_t ScriptedHttp::pending() const {
  std::lock_guard lock(m_mutex);
  return m_script.size();
}

}  // namespace alumia::test
