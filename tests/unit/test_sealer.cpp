// Envelope encryption: seal/open round trips and tamper cases, data-key wrapping (SPEC §11, OAUTH 26).
#include <alumia/base/clock.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/crypto/sealer.hpp>

#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>

namespace {

using alumia::ErrorCode;
using alumia::Sealer;
using alumia::SecretBytes;

// Decodes a "v1:" blob, lets `edit` change the raw bytes, re-encodes.
template <class F>
std::string edit_blob(const std::string& blob, F edit) {
  REQUIRE(blob.starts_with(alumia::k_sealed_prefix));
  auto raw = alumia::encoding::base64_decode(std::string_view(blob).substr(alumia::k_sealed_prefix.size()));
  REQUIRE(raw.has_value());
  edit(*raw);
  return std::string(alumia::k_sealed_prefix) + alumia::encoding::base64_encode(*raw);
}

constexpr std::size_t k_nonce = 12;
constexpr std::size_t k_tag = 16;

}  // namespace

TEST_CASE("sealer round-trips values bound to table, row and field", "[crypto]") {
  alumia::test::SeededRandom rng(1);
  Sealer sealer(alumia::generate_key(rng), rng);

  const std::string token = "ya29.a0AfH6SMBx-secret-access-token";
  auto blob = sealer.seal(token, "connections", "conn_0b5f", "access_token");
  REQUIRE(blob.has_value());
  CHECK(blob->starts_with("v1:"));
  CHECK(blob->find(token) == std::string::npos);
  auto raw = alumia::encoding::base64_decode(std::string_view(*blob).substr(3));
  REQUIRE(raw.has_value());
  CHECK(raw->size() == k_nonce + token.size() + k_tag);

  auto opened = sealer.open(*blob, "connections", "conn_0b5f", "access_token");
  REQUIRE(opened.has_value());
  CHECK(opened->view() == token);

  SECTION("empty and binary plaintexts") {
    for (std::string value : {std::string(), std::string("a\0b\xff\n", 5), std::string(5000, 'x')}) {
      auto b = sealer.seal(value, "t", "r", "f");
      REQUIRE(b.has_value());
      auto o = sealer.open(*b, "t", "r", "f");
      REQUIRE(o.has_value());
      CHECK(o->view() == value);
    }
  }

  SECTION("every seal uses a fresh nonce") {
    std::set<std::string> blobs;
    std::set<std::string> nonces;
    for (int i = 0; i < 50; ++i) {
      auto b = sealer.seal(token, "connections", "conn_0b5f", "access_token");
      REQUIRE(b.has_value());
      blobs.insert(*b);
      nonces.insert(alumia::encoding::base64_decode(std::string_view(*b).substr(3))->substr(0, k_nonce));
    }
    CHECK(blobs.size() == 50);
    CHECK(nonces.size() == 50);
  }
}

TEST_CASE("sealer refuses tampered, truncated and moved values", "[crypto]") {
  alumia::test::SeededRandom rng(2);
  const SecretBytes key = alumia::generate_key(rng);
  Sealer sealer(key, rng);
  auto sealed = sealer.seal("refresh-token-value", "connections", "conn_1", "refresh_token");
  REQUIRE(sealed.has_value());
  const std::string blob = *sealed;
  REQUIRE(sealer.open(blob, "connections", "conn_1", "refresh_token").has_value());

  auto expect_refused = [&](const std::string& b, std::string_view table, std::string_view row,
                            std::string_view field) {
    auto r = sealer.open(b, table, row, field);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::internal);
    CHECK(r.error().message.find("refresh-token-value") == std::string::npos);
  };

  SECTION("a flipped ciphertext bit") {
    expect_refused(edit_blob(blob, [](std::string& raw) { raw[k_nonce] ^= 0x01; }), "connections", "conn_1",
                   "refresh_token");
  }
  SECTION("a flipped tag bit") {
    expect_refused(edit_blob(blob, [](std::string& raw) { raw.back() ^= 0x80; }), "connections", "conn_1",
                   "refresh_token");
  }
  SECTION("a flipped nonce bit") {
    expect_refused(edit_blob(blob, [](std::string& raw) { raw[0] ^= 0x10; }), "connections", "conn_1", "refresh_token");
  }
  SECTION("truncated blobs") {
    expect_refused(edit_blob(blob, [](std::string& raw) { raw.pop_back(); }), "connections", "conn_1", "refresh_token");
    expect_refused(edit_blob(blob, [](std::string& raw) { raw.resize(k_nonce + k_tag - 1); }), "connections", "conn_1",
                   "refresh_token");
    expect_refused(blob.substr(0, blob.size() / 2), "connections", "conn_1", "refresh_token");
    expect_refused("v1:", "connections", "conn_1", "refresh_token");
    expect_refused("", "connections", "conn_1", "refresh_token");
  }
  SECTION("an unknown version or no prefix") {
    expect_refused("v2:" + blob.substr(3), "connections", "conn_1", "refresh_token");
    expect_refused(blob.substr(3), "connections", "conn_1", "refresh_token");
    expect_refused("v1:not base64!", "connections", "conn_1", "refresh_token");
  }
  SECTION("moved to another row") { expect_refused(blob, "connections", "conn_2", "refresh_token"); }
  SECTION("moved to another field") { expect_refused(blob, "connections", "conn_1", "access_token"); }
  SECTION("moved to another table") { expect_refused(blob, "oauth_clients", "conn_1", "refresh_token"); }
  SECTION("the boundaries between table, row and field are part of the AAD") {
    expect_refused(blob, "connectionsconn_1", "", "refresh_token");
    expect_refused(blob, "connections", "conn_1refresh_token", "");
  }
  SECTION("another data key") {
    Sealer other(alumia::generate_key(rng), rng);
    auto r = other.open(blob, "connections", "conn_1", "refresh_token");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("wrong key") != std::string::npos);
  }
}

TEST_CASE("sealer rejects bad keys and ambiguous AAD parts", "[crypto]") {
  alumia::test::SeededRandom rng(3);
  Sealer short_key(SecretBytes(16), rng);
  CHECK_FALSE(short_key.seal("x", "t", "r", "f").has_value());

  Sealer sealer(alumia::generate_key(rng), rng);
  CHECK_FALSE(sealer.seal("x", std::string_view("t\0u", 3), "r", "f").has_value());
  CHECK_FALSE(sealer.seal("x", "t", std::string_view("r\0", 2), "f").has_value());

  auto aad = alumia::sealing_aad("connections", "conn_1", "access_token");
  REQUIRE(aad.has_value());
  CHECK(*aad == std::string("connections\0conn_1\0access_token", 31));
}

TEST_CASE("data key wrap and unwrap", "[crypto]") {
  alumia::test::SeededRandom rng(4);
  const SecretBytes master = alumia::generate_key(rng);
  const SecretBytes data_key = alumia::generate_key(rng);
  REQUIRE(master.size() == 32);
  REQUIRE(master.view() != data_key.view());

  auto wrapped = alumia::wrap_data_key(master, data_key, rng);
  REQUIRE(wrapped.has_value());
  CHECK(wrapped->starts_with("v1:"));
  auto unwrapped = alumia::unwrap_data_key(master, *wrapped);
  REQUIRE(unwrapped.has_value());
  CHECK(unwrapped->view() == data_key.view());

  SECTION("re-wrapping under a new master key (rotate-master)") {
    const SecretBytes new_master = alumia::generate_key(rng);
    auto rewrapped = alumia::wrap_data_key(new_master, *unwrapped, rng);
    REQUIRE(rewrapped.has_value());
    CHECK(*rewrapped != *wrapped);
    auto again = alumia::unwrap_data_key(new_master, *rewrapped);
    REQUIRE(again.has_value());
    CHECK(again->view() == data_key.view());
    CHECK_FALSE(alumia::unwrap_data_key(master, *rewrapped).has_value());
  }
  SECTION("the wrong master key") {
    auto r = alumia::unwrap_data_key(alumia::generate_key(rng), *wrapped);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::internal);
  }
  SECTION("tampered or truncated") {
    CHECK_FALSE(
        alumia::unwrap_data_key(master, edit_blob(*wrapped, [](std::string& raw) { raw[20] ^= 4; })).has_value());
    CHECK_FALSE(
        alumia::unwrap_data_key(master, edit_blob(*wrapped, [](std::string& raw) { raw.pop_back(); })).has_value());
    CHECK_FALSE(alumia::unwrap_data_key(master, "v1:").has_value());
  }
  SECTION("a value sealed for a row is not a wrapped key, and vice versa") {
    Sealer sealer(master, rng);
    auto value = sealer.seal(data_key.view(), "connections", "conn_1", "access_token");
    REQUIRE(value.has_value());
    CHECK_FALSE(alumia::unwrap_data_key(master, *value).has_value());
    CHECK_FALSE(sealer.open(*wrapped, "connections", "conn_1", "access_token").has_value());
  }
  SECTION("keys of the wrong size") {
    CHECK_FALSE(alumia::wrap_data_key(SecretBytes(31), data_key, rng).has_value());
    CHECK_FALSE(alumia::wrap_data_key(master, SecretBytes(16), rng).has_value());
    CHECK_FALSE(alumia::unwrap_data_key(SecretBytes(0), *wrapped).has_value());
  }
}
