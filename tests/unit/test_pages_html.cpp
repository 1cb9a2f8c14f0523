// The admin pages' markup (daemon/pages/html.cpp): escaping, bytes shown as text, the CSP built from
// the hashes of the inline assets, and the OAuth result page (it replaced the static one of wire.cpp).
#include "pages/html.hpp"
#include "pages/oauth_result.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>

#include <catch2/catch.hpp>

using namespace alumia;
using namespace alumia::daemon;

namespace {

std::string header(const http::Response& r, std::string_view name) {
  return http::header_value(r.headers, name).value_or("");
}

}  // namespace

TEST_CASE("pages: values are escaped, bodies shown as text", "[pages]") {
  CHECK(pages::esc("<a href=\"x\" title='y'>&</a>") == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  CHECK(pages::bytes_as_text("é ok\n\t") == "é ok\n\t");
  CHECK(pages::bytes_as_text(std::string("a\x00"
                                         "b\x1b[31m\xff\xc3",
                                         10)) == "a\\x00b\\x1B[31m\\xFF\\xC3");
  CHECK(pages::bytes_as_text("</pre><script>") == "&lt;/pre&gt;&lt;script&gt;");
}

TEST_CASE("pages: the CSP allows exactly the inline assets served, by hash", "[pages]") {
  const pages::Inline script = pages::make_inline("console.log(1)");
  CHECK(script.csp_source == "'sha256-" + encoding::base64_encode(crypto::sha256("console.log(1)")) + "'");
  pages::HtmlPage p;
  p.title = "<T>";
  p.body = "<p>b</p>";
  const auto bare = pages::render(p);
  CHECK(bare.content_type == "text/html; charset=utf-8");
  CHECK(
      header(bare, "Content-Security-Policy").starts_with("default-src 'none'; script-src 'none'; style-src 'sha256-"));
  CHECK(header(bare, "Content-Security-Policy").find("connect-src 'none'") != std::string::npos);
  CHECK(bare.body.find("<title>&lt;T&gt; · alumia-connect</title>") != std::string::npos);
  CHECK(header(bare, "X-Frame-Options") == "DENY");
  CHECK(header(bare, "Cache-Control") == "no-store");
  p.scripts = {&script};
  p.connect_self = true;
  const auto with = pages::render(p);
  CHECK(header(with, "Content-Security-Policy").find("script-src " + script.csp_source + ";") != std::string::npos);
  CHECK(header(with, "Content-Security-Policy").find("connect-src 'self'") != std::string::npos);
  CHECK(with.body.find("<script>console.log(1)</script>") != std::string::npos);
}

TEST_CASE("pages: the OAuth result page states the outcome, escapes it, and carries it as inert JSON", "[pages]") {
  const auto failed =
      pages::oauth_result_page(oauth::CallbackOutcome{false, "error", "", "<script>x()</script> & \"q\""}, 400);
  CHECK(failed.status == 400);
  CHECK(failed.body.find("<h1>Connection failed</h1>") != std::string::npos);
  CHECK(failed.body.find("&lt;script&gt;x()&lt;/script&gt; &amp; &quot;q&quot;") != std::string::npos);
  CHECK(failed.body.find("<script>x()") == std::string::npos);
  // In the data block, '<' '>' '&' as \u escapes: nothing can close the element.
  CHECK(failed.body.find(R"("message":"\u003cscript\u003ex()\u003c/script\u003e \u0026 \"q\"")") != std::string::npos);
  const auto done =
      pages::oauth_result_page(oauth::CallbackOutcome{true, "success", "conn-1", "Connected GitHub."}, 200);
  CHECK(done.body.find("<h1>Connected</h1>") != std::string::npos);
  CHECK(done.body.find(R"({"connectionId":"conn-1","message":"Connected GitHub.","result":"success"})") !=
        std::string::npos);
  CHECK(done.body.find("alumia-connector-oauth") != std::string::npos);
  CHECK(header(done, "Content-Security-Policy").find("script-src 'sha256-") != std::string::npos);
  CHECK(header(done, "Content-Security-Policy").find("form-action 'none'") != std::string::npos);
  CHECK(header(done, "Referrer-Policy") == "no-referrer");
}
