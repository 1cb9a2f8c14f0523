// Identifiers: UUIDv7 from the system random source (time-ordered, version and variant bits,
// no repeats), including the pooled random bits a forked child must not share with its parent.
#include <alumia/auth/api_keys.hpp>
#include <alumia/base/clock.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

using namespace alumia;

TEST_CASE("uuid_v7: time first, version 7, RFC 9562 variant, no repeats", "[ids]") {
  SystemRandom random;
  std::set<std::string> seen;
  std::string previous;
  for (int i = 0; i < 2000; ++i) {
    const int64_t ms = 1'764'400'000'000 + i / 10;  // ten ids per millisecond
    const std::string id = random.uuid_v7(ms);
    REQUIRE(is_uuid(id));
    CHECK(id[14] == '7');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%012llx", static_cast<unsigned long long>(ms));
    CHECK(id.substr(0, 8) + id.substr(9, 4) == prefix);
    if (i % 10 == 0 && !previous.empty()) CHECK(id.substr(0, 13) > previous.substr(0, 13));  // a later ms sorts later
    if (!previous.empty()) CHECK(id > previous);  // within a millisecond too: the order they were made in
    CHECK(seen.insert(id).second);
    previous = id;
  }
}

TEST_CASE("uuid_v7: monotonic within a millisecond, past 4,096 ids, and when the clock steps back", "[ids]") {
  SystemRandom random;
  const int64_t ms = 1'764'400'000'000;
  std::string previous = random.uuid_v7(ms);
  for (int i = 0; i < 5000; ++i) {  // more than the 12-bit counter holds: the timestamp runs ahead
    const std::string id = random.uuid_v7(ms);
    REQUIRE(id > previous);
    previous = id;
  }
  CHECK(random.uuid_v7(ms - 1000) > previous);  // a clock stepping back never sorts an id earlier
}

TEST_CASE("uuid_v7: a forked child draws fresh random bits", "[ids]") {
  SystemRandom random;
  (void)random.uuid_v7(1);  // the parent's pool now holds unused bytes
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const std::string id = random.uuid_v7(1);
    (void)!::write(fds[1], id.data(), id.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[64] = {};
  const auto n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(n == 36);
  CHECK(std::string(buf, 36) != random.uuid_v7(1));  // the parent's next id differs from the child's
}
