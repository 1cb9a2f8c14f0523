// Key format alm_<env>_<48 hex>, its display prefix, and UUID ids (SPEC §2, §5).
#include <alumia/auth/api_keys.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

const std::string k_hex48 = "0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("well-formed API keys", "[unit][api-key]") {
  CHECK(alumia::is_well_formed_api_key("alm_live_" + k_hex48));
  CHECK(alumia::is_well_formed_api_key("alm_test_" + k_hex48));
  CHECK(alumia::is_well_formed_api_key("alm_live_" + std::string(48, '0')));
}

TEST_CASE("malformed API keys are refused", "[unit][api-key]") {
  CHECK_FALSE(alumia::is_well_formed_api_key(""));
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_"));
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_" + k_hex48.substr(1)));  // 47 hex
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_" + k_hex48 + "0"));      // 49 hex
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_prod_" + k_hex48));            // unknown env
  CHECK_FALSE(alumia::is_well_formed_api_key("ALM_LIVE_" + k_hex48));
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_" + std::string(48, 'A')));  // upper-case hex
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_" + std::string(48, 'g')));  // not hex
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live_" + k_hex48 + "\n"));
  CHECK_FALSE(alumia::is_well_formed_api_key(" alm_live_" + k_hex48));
  CHECK_FALSE(alumia::is_well_formed_api_key("Bearer alm_live_" + k_hex48));
  CHECK_FALSE(alumia::is_well_formed_api_key("alm_live" + k_hex48));
  std::string with_nul = "alm_live_" + k_hex48;
  with_nul[20] = '\0';
  CHECK_FALSE(alumia::is_well_formed_api_key(with_nul));
}

TEST_CASE("the display prefix is alm_<env>_ plus the first 4 hex", "[unit][api-key]") {
  CHECK(alumia::api_key_prefix("alm_live_" + k_hex48) == "alm_live_0123");
  CHECK(alumia::api_key_prefix("alm_test_" + k_hex48) == "alm_test_0123");
  CHECK(alumia::api_key_prefix("alm_live_ffee" + k_hex48.substr(4)) == "alm_live_ffee");
  // Never more than 4 characters of the secret part.
  const std::string p = alumia::api_key_prefix("alm_live_" + k_hex48);
  CHECK(p.size() == std::string("alm_live_").size() + 4);
}

TEST_CASE("UUIDs", "[unit][uuid]") {
  CHECK(alumia::is_uuid("123e4567-e89b-42d3-a456-426614174000"));
  CHECK(alumia::is_uuid("00000000-0000-4000-8000-000000000000"));
  CHECK_FALSE(alumia::is_uuid(""));
  CHECK_FALSE(alumia::is_uuid("not-a-uuid"));
  CHECK_FALSE(alumia::is_uuid("123e4567e89b42d3a456426614174000"));       // no dashes
  CHECK_FALSE(alumia::is_uuid("123e4567-e89b-42d3-a456-42661417400"));    // short
  CHECK_FALSE(alumia::is_uuid("123e4567-e89b-42d3-a456-4266141740000"));  // long
  CHECK_FALSE(alumia::is_uuid("{123e4567-e89b-42d3-a456-426614174000}"));
  CHECK_FALSE(alumia::is_uuid("123e4567-e89b-42d3-a456-42661417400g"));
  CHECK_FALSE(alumia::is_uuid("123e4567-e89b-42d3-a456-426614174000\n"));
  CHECK_FALSE(alumia::is_uuid("../../etc/passwd"));
}

TEST_CASE("generated ids and keys have the documented shapes", "[unit][uuid][api-key]") {
  alumia::SystemRandom random;
  for (int i = 0; i < 50; ++i) {
    const std::string id = random.uuid_v4();
    CAPTURE(id);
    CHECK(alumia::is_uuid(id));
    CHECK(id[14] == '4');                                          // version 4
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);  // RFC 4122 variant
    CHECK(alumia::is_well_formed_api_key("alm_live_" + random.hex(24)));
  }
}
