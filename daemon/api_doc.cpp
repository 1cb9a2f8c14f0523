#include "api_doc.hpp"

#include "routes.hpp"

namespace alumia::daemon {
namespace {

std::string auth_text(Auth auth) {
  switch (auth) {
    case Auth::key:
      return "key";
    case Auth::ticket_or_key:
      return "ticket or key";
    case Auth::public_:
      return "none";
  }
  return "key";
}

std::string size_text(std::size_t bytes) {
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::string listeners_text(unsigned listeners) {
  std::string out;
  if (listeners & k_on_control) out = "control";
  if (listeners & k_on_public) out += out.empty() ? "public" : ", public";
  return out;
}

// A table cell: no line breaks, '|' escaped.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string api_markdown() {
  std::string md =
      "# alumia-connectd HTTP API\n"
      "\n"
      "<!-- Generated from the route table by `alumia-connectd --print-api-md > docs/API.md`; do not edit.\n"
      "     tests/unit/test_api_doc.cpp fails when this file differs from the table. -->\n"
      "\n"
      "Every route of the daemon, in the order `dispatch()` matches them (`daemon/routes.cpp`, the rows in\n"
      "`daemon/handlers/*.cpp`). Requests and answers use the JSON envelope of docs/spec/SPEC.md §3; a path or\n"
      "method that is not listed answers `NOT_FOUND` (404), or HTTP 405 with code `BAD_REQUEST`, in it.\n"
      "\n"
      "- **auth**: `key` is `Authorization: Bearer alm_…`; `ticket or key` is the browser-opened `oauthUrl`\n"
      "  (a one-time ticket, or the key on the control listener); `none` routes check their caller themselves\n"
      "  (a provider's signature, the OAuth state and browser cookie).\n"
      "- **scope**: what the key must hold (SPEC §2); a key without it gets `FORBIDDEN`.\n"
      "- **body cap**: a larger `Content-Length` gets `PAYLOAD_TOO_LARGE` before the body is read; where it says\n"
      "  so, the target's own cap (the endpoint's `maxBodyBytes`) applies first.\n"
      "- **listeners**: `control` is the loopback control listener, `public` the `--public-listen` one.\n"
      "\n"
      "| method | path | auth | scope | body cap | listeners | summary |\n"
      "|---|---|---|---|---|---|---|\n";
  for (const Route& r : route_table()) {
    std::string cap = size_text(r.body_cap);
    if (r.admit_body) cap = "the endpoint's maxBodyBytes, at most " + cap;
    md += "| " + std::string(r.method) + " | `" + std::string(r.pattern) + "` | " + auth_text(r.auth) + " | " +
          cell(r.scope.describe()) + " | " + cap + " | " + listeners_text(r.listeners) + " | " + cell(r.summary) +
          " |\n";
  }
  return md;
}

}  // namespace alumia::daemon
