// The public base URL policy and URL parsing (common/net/public_base_url.cpp, url.cpp; SPEC §8). The
// input is the URL text. Properties: the normal form is a fixed point (judged again it is accepted and
// unchanged); check_public_base_url and judge_base_url agree with public_base_url; an insecure judgement
// never takes a URL with userinfo, query or fragment; a refusal never quotes the whole text (it may
// hold a credential).
#include "fuzz_common.hpp"

#include <alumia/net/url.hpp>

#include <cstdint>
#include <string>

using namespace alumia;

namespace {

void no_whole_text(std::string_view text, const Error& e) {
  if (text.size() >= 12 && text.find("://") != std::string_view::npos && e.message.find(text) != std::string::npos)
    fuzz::finding("fuzz_base_url", "a refusal quotes the whole URL", e.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  if (auto parsed = url::parse(text)) {
    (void)parsed->origin();
    (void)parsed->host_port();
    (void)url::is_loopback_host(*parsed);
  }
  (void)url::check_outbound_url(text);

  const auto normal = url::public_base_url(text);
  const auto checked = url::check_public_base_url(text);
  if (normal.has_value() != checked.has_value())
    fuzz::finding("fuzz_base_url", "check_public_base_url disagrees with public_base_url");
  const auto judged = url::judge_base_url(text, false);
  if (judged.has_value() != normal.has_value())
    fuzz::finding("fuzz_base_url", "judge_base_url(strict) disagrees with public_base_url");
  const auto insecure = url::judge_base_url(text, true);
  if (normal) {
    if (judged->url != *normal || !judged->broken_rule.empty())
      fuzz::finding("fuzz_base_url", "judge_base_url(strict) gives another normal form", judged->url);
    if (!insecure || insecure->url != *normal || !insecure->broken_rule.empty())
      fuzz::finding("fuzz_base_url", "judge_base_url(insecure) differs on a safe URL", *normal);
    const auto twice = url::public_base_url(*normal);
    if (!twice) fuzz::finding("fuzz_base_url", "the normal form is refused", twice.error().message);
    if (*twice != *normal)
      fuzz::finding("fuzz_base_url", "the normal form is not a fixed point", *normal + " -> " + *twice);
  } else {
    no_whole_text(text, normal.error());
    if (insecure) {
      if (insecure->broken_rule.empty())
        fuzz::finding("fuzz_base_url", "an insecure judgement without the broken rule", insecure->url);
      const auto p = url::parse(insecure->url);
      if (!p || !p->userinfo.empty() || !p->query.empty() || insecure->url.find('#') != std::string::npos)
        fuzz::finding("fuzz_base_url", "an insecure judgement took userinfo, query or fragment", insecure->url);
    } else {
      no_whole_text(text, insecure.error());
    }
  }
  return 0;
}
