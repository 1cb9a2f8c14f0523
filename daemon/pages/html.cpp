#include "pages/html.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>

#include <cstdio>

namespace alumia::daemon::pages {
namespace {

const Inline& style() {
  static const Inline k_style = make_inline(R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
nav{margin-bottom:1em}nav a,nav form{margin-right:1em;display:inline}
table{border-collapse:collapse;margin:.5em 0 1.2em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;white-space:pre-wrap;word-break:break-all;max-height:40em;overflow:auto}
.state-dead,.state-failed,.state-error,.state-expired{color:#a00;font-weight:bold}.state-succeeded,.state-connected,.state-active{color:#070;font-weight:bold}
.note{background:#eef6ff;border:1px solid #9bd;padding:.4em .6em}.refused{background:#fee;border:1px solid #d99;padding:.4em .6em}
form.inline{display:inline}label{margin-right:.8em}
)css");
  return k_style;
}

// Appends the UTF-8 sequence at s[i] when valid and returns its length, else 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  if (n == 2 && c < 0xC2) return 0;  // overlong
  return n;
}

}  // namespace

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string bytes_as_text(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    const std::size_t n = utf8_sequence(bytes, i);
    if (n == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      text += hex;
      ++i;
      continue;
    }
    text.append(bytes.substr(i, n));
    i += n;
  }
  return esc(text);
}

std::string q(std::string_view s) { return http::url_encode(s); }

Inline make_inline(std::string code) {
  std::string source = "'sha256-" + encoding::base64_encode(crypto::sha256(code)) + "'";
  return Inline{std::move(code), std::move(source)};
}

http::Response render(const HtmlPage& page) {
  std::string scripts_csp;
  std::string scripts_html;
  for (const Inline* s : page.scripts) {
    scripts_csp += " " + s->csp_source;
    scripts_html += "<script>" + s->code + "</script>\n";
  }
  http::Response r;
  r.status = page.status;
  r.content_type = "text/html; charset=utf-8";
  r.body =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width\"><title>" +
      esc(page.title) + " · alumia-connect</title><style>" + style().code + "</style></head>\n<body>\n" + page.body +
      scripts_html + "</body></html>\n";
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src" +
                             (scripts_csp.empty() ? std::string(" 'none'") : scripts_csp) + "; style-src " +
                             style().csp_source + "; connect-src " + (page.connect_self ? "'self'" : "'none'") +
                             "; img-src 'none'; form-action " + (page.no_forms ? "'none'" : "'self'") +
                             "; frame-ancestors 'none'; base-uri 'none'");
  r.headers.emplace_back("Cache-Control", "no-store");
  // Not no-referrer: under that policy a browser sends `Origin: null` with a form POST, which the
  // listener (rightly) refuses as cross-origin; same-origin keeps the origin and sends no referrer out.
  r.headers.emplace_back("Referrer-Policy", page.no_forms ? "no-referrer" : "same-origin");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  for (const auto& h : page.extra_headers) r.headers.push_back(h);
  return r;
}

http::Response see_other(const std::string& location) {
  http::Response r;
  r.status = 303;
  r.content_type.clear();
  r.headers.emplace_back("Location", location);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace alumia::daemon::pages
