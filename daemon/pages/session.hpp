#pragma once
// Who is looking at an admin page (SPEC §9): the session of the request's cookie (AdminSessions,
// common/auth/admin_sessions.hpp), and for a form POST also the same-origin rule and the session's
// CSRF token. Shared by the page handlers (handlers/pages.cpp, handlers/pages_connectors.cpp).
#include "context.hpp"
#include "pages/html.hpp"

#include <alumia/auth/admin_sessions.hpp>

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace alumia::daemon::pages {

struct PageCaller {
  Caller caller;  // the session's user, acting with the scopes of the key that minted the login link
  AdminSession session;
};

using Form = std::vector<std::pair<std::string, std::string>>;

// The session cookie's name: one per control listener (browsers share cookies between the ports of a
// host, so two daemons on one machine must not overwrite each other's).
std::string cookie_name(const DaemonContext& ctx);
// The cookie's value of a request, or empty.
std::string session_cookie(const DaemonContext& ctx, const http::Request& req);
// The live session of the request, or nullopt (no cookie, unknown, expired, or its user gone).
std::optional<PageCaller> page_caller(DaemonContext& ctx, const http::Request& req);
// The page a request without a live session gets (401): how to log in.
http::Response login_needed();
// A form POST: same origin (Origin, else Sec-Fetch-Site), a live session and its CSRF token (field
// `csrf`, compared in constant time). Either the caller or the refusal page (403 / 401).
std::variant<PageCaller, http::Response> form_caller(DaemonContext& ctx, const http::Request& req, const Form& form);
std::string form_value(const Form& form, std::string_view name);
// A path of the admin pages to come back to after a form (the `back` field), else `fallback`.
std::string back_path(const Form& form, const std::string& fallback);

// The navigation bar (with the logout form) and a hidden CSRF field for forms.
std::string nav(const PageCaller& who);
std::string csrf_field(const AdminSession& s);
// A page with a heading and a message (already escaped HTML).
http::Response message_page(int status, const std::string& title, const std::string& html);

}  // namespace alumia::daemon::pages
