// http::url_encode / url_decode / form_encode / form_decode, which go through uriparser.
#include <alumia/net/http.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace alumia;

TEST_CASE("url encoding: unreserved kept, the rest %XX, decoding as written", "[url][encoding]") {
  CHECK(http::url_encode("aZ09-._~") == "aZ09-._~");
  CHECK(http::url_encode("a b/&=+?\xc3\xbc") == "a%20b%2F%26%3D%2B%3F%C3%BC");
  CHECK(http::url_encode(std::string("\0\n", 2)) == "%00%0A");
  CHECK(http::url_decode("a+b%2f%2F") == "a b//");
  CHECK(http::url_decode("a+b", false) == "a+b");
  CHECK(http::url_decode("%zz%4%") == "%zz%4%");  // not an escape: kept as written
  CHECK(http::url_decode("%41%00x") == std::string("A\0x", 3));
  CHECK(http::url_decode(std::string("a\0%41", 5)) == std::string("a\0A", 3));  // a raw NUL is kept
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  CHECK(http::url_decode(http::url_encode(all), false) == all);
  const std::vector<std::pair<std::string, std::string>> fields{{"grant_type", "authorization_code"},
                                                                {"redirect_uri", "http://127.0.0.1:1/cb?a=b c"}};
  const std::string body = http::form_encode(fields);
  CHECK(body == "grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb%3Fa%3Db%20c");
  CHECK(http::form_decode(body) == fields);
}
