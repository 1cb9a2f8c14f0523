#pragma once
// The building blocks of the HTML pages the daemon serves (SPEC §9): escaping, inline assets allowed
// by hash, and the page frame with its headers.
//
// Why this shape: event bodies and headers, labels and error texts are attacker-controlled (anyone may
// post to a receive URL), so every value reaches a page through esc() and nothing else; the pages load
// nothing from elsewhere and run only the inline scripts whose SHA-256 is in their Content-Security-Policy
// (computed here from the very text served), so an injected <script> would not run even if escaping failed.
#include <alumia/net/http.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace alumia::daemon::pages {

// Text and attribute values: & < > " ' as entities.
std::string esc(std::string_view s);
// Bytes shown as text (an event body): valid UTF-8 kept, control characters other than tab and line
// ends and any invalid byte as \xNN, then escaped.
std::string bytes_as_text(std::string_view bytes);
// A query component (RFC 3986 unreserved kept).
std::string q(std::string_view s);

// An inline <script> or <style> and its CSP source expression ('sha256-…' of exactly `code`).
struct Inline {
  std::string code;
  std::string csp_source;
};
Inline make_inline(std::string code);

struct HtmlPage {
  int status = 200;
  std::string title;
  std::string body;                    // already escaped HTML
  std::vector<const Inline*> scripts;  // appended at the end of the body
  bool connect_self = false;           // the scripts fetch from this origin (connect-src 'self')
  // A page with no form (the OAuth result page): form-action 'none' and no referrer at all.
  bool no_forms = false;
  std::vector<http::Headers::value_type> extra_headers;  // Set-Cookie, …
};
// The document with the shared style, and the headers every page carries: no-store, no referrer, no
// framing, nosniff, and the CSP: default-src 'none', scripts and the style by hash, forms to self only.
http::Response render(const HtmlPage& page);

// 303 to a path of this origin, with the page headers.
http::Response see_other(const std::string& location);

}  // namespace alumia::daemon::pages
