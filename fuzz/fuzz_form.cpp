// application/x-www-form-urlencoded and percent-decoding (common/net/http.cpp): form_decode (Slack's
// slash commands, Twilio's parameters, token responses, every query string), url_decode, and their
// encoders. The input is a form body. Properties: encoding what was decoded and decoding it again gives
// the same fields; url_decode(url_encode(s)) == s for any bytes.
#include "fuzz_common.hpp"

#include <alumia/net/http.hpp>

#include <cstdint>
#include <string>

using namespace alumia;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const auto fields = http::form_decode(text);
  const auto again = http::form_decode(http::form_encode(fields));
  if (again != fields) fuzz::finding("fuzz_form", "form_decode(form_encode(fields)) differs from fields");
  for (const bool plus_as_space : {true, false}) (void)http::url_decode(text, plus_as_space);
  if (http::url_decode(http::url_encode(text), false) != text)
    fuzz::finding("fuzz_form", "url_decode(url_encode(s)) differs from s");
  if (http::url_decode(http::url_encode(text), true) != text)
    fuzz::finding("fuzz_form", "url_decode(url_encode(s), plus_as_space) differs from s");
  return 0;
}
