// OAUTH.md item 32: the CLI sends its key only to a loopback listener owned by its own uid.
#include "daemon_client.hpp"

#include <catch2/catch.hpp>

#include <bit>

using namespace alumia::cli;

namespace {

// Real lines from a little-endian host (x86-64): 127.0.0.1:7465 LISTEN uid 1000; 0.0.0.0:22
// LISTEN uid 0; an established 127.0.0.1:7465 -> 127.0.0.1:53422 by uid 1000; a LISTEN on 7466
// by uid 1001; a garbage line.
constexpr const char* k_tcp =
    R"(  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1D29 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31337 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1D29 0100007F:D0AE 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1D2A 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 555 1 0000000000000000 100 0 0 10 0
garbage line
)";

// ::1 port 7465 LISTEN uid 1001; :: port 8080 LISTEN uid 1000; ::ffff:127.0.0.1 port 9000 uid 1000;
// 2001:db8::1 port 7467 LISTEN uid 1000 (not loopback).
constexpr const char* k_tcp6 =
    R"(  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1D29 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 779 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:1D2B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 780 1 0000000000000000 100 0 0 10 0
)";

}  // namespace

TEST_CASE("/proc/net/tcp lines are parsed", "[cli]") {
  // The fixture is from a little-endian host (the kernel prints host-order words).
  if constexpr (std::endian::native != std::endian::little) return;
  const auto v4 = parse_proc_net_tcp(k_tcp, false);
  REQUIRE(v4.size() == 4);
  CHECK(v4[0].port == 7465);
  CHECK(v4[0].state == k_tcp_listen);
  CHECK(v4[0].uid == 1000);
  CHECK(v4[0].address[0] == 127);
  CHECK(v4[0].address[3] == 1);
  CHECK(is_loopback_or_any(v4[0]));
  CHECK(v4[1].port == 22);
  CHECK(is_loopback_or_any(v4[1]));  // 0.0.0.0
  CHECK(v4[2].state == 0x01);

  const auto v6 = parse_proc_net_tcp(k_tcp6, true);
  REQUIRE(v6.size() == 4);
  CHECK(v6[0].address[15] == 1);
  CHECK(is_loopback_or_any(v6[0]));        // ::1
  CHECK(is_loopback_or_any(v6[1]));        // ::
  CHECK(is_loopback_or_any(v6[2]));        // ::ffff:127.0.0.1
  CHECK_FALSE(is_loopback_or_any(v6[3]));  // 2001:db8::1
  CHECK(v6[3].address[0] == 0x20);
  CHECK(v6[3].address[1] == 0x01);
}

TEST_CASE("listener ownership: ours, foreign, none", "[cli]") {
  // The fixture is from a little-endian host (the kernel prints host-order words).
  if constexpr (std::endian::native != std::endian::little) return;
  const auto v4 = parse_proc_net_tcp(k_tcp, false);
  const auto v6 = parse_proc_net_tcp(k_tcp6, true);

  auto ours = listener_ownership(v4, 7465, 1000);
  CHECK(ours.found);
  CHECK(ours.foreign_uids.empty());

  auto squatted = listener_ownership(v4, 7466, 1000);
  CHECK(squatted.found);
  REQUIRE(squatted.foreign_uids.size() == 1);
  CHECK(squatted.foreign_uids[0] == 1001);

  CHECK_FALSE(listener_ownership(v4, 7470, 1000).found);
  CHECK_FALSE(listener_ownership(v6, 7467, 1000).found);  // not on loopback
  // An established connection on the port is no listener.
  std::vector<ProcNetSocket> established{v4[2]};
  CHECK_FALSE(listener_ownership(established, 7465, 1000).found);

  // Both families together: ::1:7465 owned by 1001 next to our 127.0.0.1:7465 is refused.
  auto all = v4;
  all.insert(all.end(), v6.begin(), v6.end());
  auto mixed = listener_ownership(all, 7465, 1000);
  CHECK(mixed.found);
  CHECK(mixed.foreign_uids == std::vector<uid_t>{1001});
  CHECK(listener_ownership(all, 9000, 1000).foreign_uids.empty());
  CHECK(listener_ownership(all, 9000, 1000).found);
}

TEST_CASE("malformed /proc/net/tcp input yields nothing", "[cli]") {
  CHECK(parse_proc_net_tcp("", false).empty());
  CHECK(parse_proc_net_tcp("0: zz:1D29 00000000:0000 0A 0 0 0 1000", false).empty());
  CHECK(parse_proc_net_tcp("0: 0100007F:1D29 00000000:0000 0A 0 0 0 notanumber", false).empty());
  CHECK(parse_proc_net_tcp("0: 0100007F 00000000:0000 0A 0 0 0 1000", false).empty());
  CHECK(parse_proc_net_tcp("0: 0100007F:1D29 00000000:0000 0A 0 0 0 1000", true).empty());  // v4 text as v6
}
