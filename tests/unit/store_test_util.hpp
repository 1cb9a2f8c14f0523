#pragma once
// Records for the store tests (test_store.cpp, test_store_conformance.cpp): a connection row and ids
// that sort in the order of their number.
#include <alumia/store/domain.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

namespace alumia::test {

inline Connection make_connection(const std::string& id, const std::string& user, int64_t created,
                                  const std::string& slug = "telegram",
                                  ConnectionStatus st = ConnectionStatus::pending) {
  Connection c;
  c.id = id;
  c.user_id = user;
  c.connector_slug = slug;
  c.label = "l-" + id.substr(0, 8);
  c.auth_type = AuthType::api_key;
  c.status = st;
  c.created_at = c.updated_at = created;
  return c;
}

inline std::string id_n(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

}  // namespace alumia::test
