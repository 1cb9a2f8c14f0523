#include "pages/session.hpp"

#include <alumia/base/strings.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::daemon::pages {

std::string cookie_name(const DaemonContext& ctx) {
  const auto colon = ctx.info.control_url.rfind(':');
  const std::string port = colon == std::string::npos ? "" : ctx.info.control_url.substr(colon + 1);
  return "alumia-admin-" + port;
}

std::string session_cookie(const DaemonContext& ctx, const http::Request& req) {
  const std::string name = cookie_name(ctx);
  for (const auto& [header, value] : req.headers) {
    if (header != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

std::optional<PageCaller> page_caller(DaemonContext& ctx, const http::Request& req) {
  const std::string id = session_cookie(ctx, req);
  auto session = ctx.admin_sessions.find(id);
  if (!session) return std::nullopt;
  auto user = ctx.store.find_user(session->user_id);
  if (!user || !*user) return std::nullopt;
  PageCaller who{Caller{**user, {}}, std::move(*session)};
  who.caller.key.user_id = who.caller.user.id;
  who.caller.key.scopes = who.session.scopes;
  return who;
}

http::Response message_page(int status, const std::string& title, const std::string& html) {
  HtmlPage p;
  p.status = status;
  p.title = title;
  p.body = "<h1>" + esc(title) + "</h1>\n" + html + "\n";
  return render(p);
}

http::Response login_needed() {
  return message_page(401, "Log in to the admin pages",
                      "<p>This page needs a session. Run <code>alumia-connect admin open</code> (or <code>admin "
                      "open --no-browser</code> and open the link it prints): it makes a single-use login link "
                      "that opens a session in this browser.</p>");
}

std::string form_value(const Form& form, std::string_view name) {
  for (const auto& [k, v] : form)
    if (k == name) return v;
  return {};
}

std::string back_path(const Form& form, const std::string& fallback) {
  const std::string back = form_value(form, "back");
  // Only a path of these pages: never another origin ("//host", "/\host") or a scheme.
  if (back.starts_with("/admin/") && back.find("//") == std::string::npos && back.find('\\') == std::string::npos &&
      back.find_first_of("\r\n") == std::string::npos)
    return back;
  return fallback;
}

std::variant<PageCaller, http::Response> form_caller(DaemonContext& ctx, const http::Request& req, const Form& form) {
  const auto host = req.header("host").value_or("");
  const auto origin = req.header("origin");
  const auto fetch_site = req.header("sec-fetch-site");
  if ((origin && *origin != "http://" + host) || (fetch_site && *fetch_site != "same-origin"))
    return message_page(403, "Refused: not from this page",
                        "<p>A form of the admin pages is accepted only from the pages themselves (same origin). "
                        "Nothing was changed.</p>");
  auto who = page_caller(ctx, req);
  if (!who) return login_needed();
  if (!crypto::token_equal_ct(form_value(form, "csrf"), who->session.csrf))
    return message_page(403, "Refused: the form's token does not match",
                        "<p>The form did not carry this session's CSRF token (an old page, or a form from elsewhere). "
                        "Nothing was changed; reload the page and try again.</p>");
  return std::move(*who);
}

std::string csrf_field(const AdminSession& s) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + esc(s.csrf) + "\">";
}

std::string nav(const PageCaller& who) {
  return "<nav><a href=\"/admin/connector-events\">Connector events</a><a href=\"/admin/connectors\">Connectors</a>"
         "<form class=\"inline\" method=\"post\" action=\"/admin/logout\">" +
         csrf_field(who.session) + "<button type=\"submit\">Log out</button></form><span>" + esc(who.caller.user.name) +
         "</span></nav>\n";
}

}  // namespace alumia::daemon::pages
