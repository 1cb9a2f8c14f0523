#pragma once
// One call a local fake of a provider API received, recorded for the tests to inspect.
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace alumia::test {

struct FakeCall {
  std::string method;
  std::string path;
  std::string query;                           // raw, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

inline FakeCall record_call(const httplib::Request& req) {
  FakeCall c{req.method, req.path, {}, {}, req.body};
  const auto q = req.target.find('?');
  if (q != std::string::npos) c.query = req.target.substr(q + 1);
  for (const auto& [k, v] : req.headers) {
    std::string name = k;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    c.headers[name] = v;
  }
  return c;
}

}  // namespace alumia::test
