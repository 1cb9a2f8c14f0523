// The admin pages (SPEC §9), HTML served on the control listener: the login link's exchange for a
// session, logout, the connector events page (endpoints, jobs, a page of events with filters), an
// event on its own page (headers and body), and the retry and replay forms. The connectors page is in
// pages_connectors.cpp; the page frame, escaping and CSP in pages/html.cpp; the session in
// pages/session.cpp.
//
// Every page route is public in the table (a browser has no API key) and checks its session itself;
// every route that changes something is a POST form that also passes the same-origin rule and carries
// the session's CSRF token (pages::form_caller). The login link is minted by POST
// /api/v1/admin/login-links (a key with `admin`; `alumia-connect admin open`).
#include "pages/html.hpp"
#include "pages/session.hpp"
#include "routes.hpp"
#include "wire.hpp"

#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <nlohmann/json.hpp>

namespace alumia::daemon {
namespace {

using nlohmann::json;
using namespace pages;

constexpr std::size_t k_body_shown_bytes = 1024 * 1024;
constexpr std::string_view k_events_path = "/admin/connector-events";
constexpr std::string_view k_connectors_path = "/admin/connectors";

std::string num(int64_t n) { return std::to_string(n); }
std::string time_text(std::optional<int64_t> ms) { return ms ? esc(format_time_ms(*ms)) : "-"; }
std::string state_cell(std::string_view state) {
  return "<td class=\"state state-" + esc(state) + "\" data-state=\"" + esc(state) + "\">" + esc(state) + "</td>";
}

// POST /api/v1/admin/login-links {"page": "connector-events"|"connectors"} → {url, expiresAt}.
Result<http::Response> mint_login_link(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  std::string next;
  if (!req.body.empty()) {
    auto body = TRY(parse_json_body(req));
    if (!body.is_object())
      return fail(ErrorCode::bad_request,
                  "body must be a JSON object {\"page\": \"connector-events\"|\"connectors\"} or empty");
    for (const auto& [name, value] : body.items())
      if (name != "page")
        return fail(ErrorCode::bad_request, "unknown field \"" + name + "\": the body takes only \"page\"");
    if (auto it = body.find("page"); it != body.end() && !it->is_null()) {
      if (!it->is_string() || (*it != "connector-events" && *it != "connectors"))
        return fail(ErrorCode::bad_request, "page must be \"connector-events\" or \"connectors\"");
      if (*it == "connectors") next = "&next=connectors";
    }
  }
  const std::string token = ctx.admin_sessions.issue_link(caller->user.id, caller->key.scopes);
  const int64_t expires_at = ctx.clock.now_ms() + ctx.admin_sessions.link_ttl_ms();
  return ok(login_link_json(ctx.info.control_url + "/admin/login?token=" + token + next, expires_at));
}

// GET /admin/login?token=…: the link exchanged for a session cookie, then 303 to the clean URL.
Result<http::Response> login(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const auto token = req.query_param("token");
  if (!token)
    return message_page(200, "Admin pages",
                        "<p>You are not logged in. Run <code>alumia-connect admin open</code> to open these pages "
                        "with a single-use login link.</p>");
  auto login = ctx.admin_sessions.redeem_link(*token);
  if (!login)
    return message_page(403, "This login link cannot be used",
                        "<p>A login link works once and only for a short time; this one was already used or has "
                        "expired. Run <code>alumia-connect admin open</code> for a new one.</p>");
  const bool connectors = req.query_param("next").value_or("") == "connectors";
  http::Response r = see_other(std::string(connectors ? k_connectors_path : k_events_path));
  r.headers.emplace_back("Set-Cookie", cookie_name(ctx) + "=" + login->session_id +
                                           "; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=" +
                                           std::to_string(ctx.admin_sessions.session_ttl_ms() / 1000));
  return r;
}

// POST /admin/logout (form): the session ends and its cookie is cleared.
Result<http::Response> logout(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Form form = http::form_decode(req.body);
  auto who = form_caller(ctx, req, form);
  if (auto* refused = std::get_if<http::Response>(&who)) return std::move(*refused);
  ctx.admin_sessions.end(session_cookie(ctx, req));
  http::Response r = see_other("/admin/login");
  r.headers.emplace_back("Set-Cookie", cookie_name(ctx) + "=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
  return r;
}

// The filter form and the query string of the filters in force (for the paging links).
std::string filter_form(const AdminSummary& s, const http::Request& req) {
  const auto value = [&](const char* name) { return req.query_param(name).value_or(""); };
  std::string out =
      "<form method=\"get\" action=\"/admin/connector-events\" id=\"filters\"><label>Endpoint "
      "<select name=\"endpoint\"><option value=\"\">all</option>";
  for (const auto& e : s.endpoints) {
    const auto& id = e.endpoint.id;
    out += "<option value=\"" + esc(id) + "\"" + (value("endpoint") == id ? " selected" : "") + ">" +
           esc(e.endpoint.label.empty() ? id : e.endpoint.label + " (" + id.substr(0, 8) + ")") + "</option>";
  }
  out += "</select></label><label>Provider <select name=\"provider\"><option value=\"\">all</option>";
  for (const Provider p : all_providers()) {
    const std::string name(to_string(p));
    out += "<option" + std::string(value("provider") == name ? " selected" : "") + ">" + esc(name) + "</option>";
  }
  out += "</select></label><label>Job state <select name=\"state\"><option value=\"\">all</option>";
  for (const JobState st : job_states()) {
    const std::string name(to_string(st));
    out += "<option" + std::string(value("state") == name ? " selected" : "") + ">" + esc(name) + "</option>";
  }
  out += "</select></label><label>Since <input name=\"since\" size=\"8\" placeholder=\"2h, 7d\" value=\"" +
         esc(value("since")) + "\"></label><button type=\"submit\">Filter</button> <a href=\"" +
         std::string(k_events_path) + "\">clear</a></form>\n";
  return out;
}

std::string filters_query(const http::Request& req) {
  std::string out;
  for (const char* name : {"endpoint", "provider", "state", "since", "limit"})
    if (auto v = req.query_param(name); v && !v->empty()) out += std::string("&") + name + "=" + q(*v);
  return out;
}

std::string retry_form(const PageCaller& who, const std::string& job_id, const std::string& back) {
  return "<form class=\"inline\" method=\"post\" action=\"/admin/jobs/" + esc(q(job_id)) + "/retry\">" +
         csrf_field(who.session) + "<input type=\"hidden\" name=\"back\" value=\"" + esc(back) +
         "\"><button type=\"submit\" data-retry=\"" + esc(job_id) + "\">Retry</button></form>";
}

std::string replay_form(const PageCaller& who, const std::string& event_id, const std::string& back) {
  return "<form class=\"inline\" method=\"post\" action=\"/admin/connector-events/" + esc(q(event_id)) + "/replay\">" +
         csrf_field(who.session) + "<input type=\"hidden\" name=\"back\" value=\"" + esc(back) +
         "\"><button type=\"submit\" data-replay=\"" + esc(event_id) + "\">Replay</button></form>";
}

// A dead or failed event's newest job, for its Retry button (one index read per such row of the page).
std::optional<WebhookJob> newest_job(DaemonContext& ctx, const Caller& caller, const std::string& event_id) {
  JobFilter f;
  f.event_id = event_id;
  auto jobs = ctx.webhooks.list_jobs(caller, std::move(f), alumia::Page{.limit = 1, .cursor = {}});
  if (!jobs || jobs->items.empty()) return std::nullopt;
  return jobs->items.front();
}

// GET /admin/connector-events?endpoint=&provider=&state=&since=&limit=&cursor=
Result<http::Response> events_page(DaemonContext& ctx, const http::Request& req, const Caller*) {
  auto who = page_caller(ctx, req);
  if (!who) return login_needed();
  auto page = page_from_query(req);
  auto query = page ? admin_events_query(ctx, req) : Result<AdminEventsQuery>(std::unexpected(page.error()));
  auto summary = query ? ctx.webhooks.admin_summary(who->caller, *query, *page)
                       : Result<AdminSummary>(std::unexpected(query.error()));
  if (!summary) {
    const Error& e = summary.error();
    return message_page(e.http_status(), "Connector events: refused",
                        "<p class=\"refused\">" + esc(e.message) + "</p><p><a href=\"" + std::string(k_events_path) +
                            "\">Show every event</a></p>");
  }
  const AdminSummary& s = *summary;
  const std::string back = req.target.starts_with("/admin/") ? req.target : std::string(k_events_path);
  std::string b = nav(*who) + "<h1>Connector events</h1>\n";
  if (auto note = req.query_param("note"); note && !note->empty())
    b += "<p class=\"note\" id=\"note\">" + esc(*note) + "</p>\n";

  b += "<h2>Jobs</h2>\n<table id=\"jobs\"><tr>";
  for (const JobState st : job_states()) b += "<th>" + esc(to_string(st)) + "</th>";
  b += "<th>oldest queued</th></tr>\n<tr>";
  for (const JobState st : job_states()) {
    const auto it = s.jobs.find(st);
    b += "<td class=\"num\" data-jobs=\"" + esc(to_string(st)) + "\">" + num(it == s.jobs.end() ? 0 : it->second) +
         "</td>";
  }
  b += "<td>" +
       (s.oldest_queued ? num(std::max<int64_t>(0, s.now - s.oldest_queued->next_attempt_at) / 1000) + " s (" +
                              esc(s.oldest_queued->id) + ")"
                        : std::string("-")) +
       "</td></tr></table>\n";

  b += "<h2>Endpoints</h2>\n";
  if (s.endpoints.empty()) b += "<p>No endpoints yet (<code>alumia-connect webhooks create</code>).</p>\n";
  else {
    b += "<table id=\"endpoints\"><tr><th>endpoint</th><th>provider</th><th>label</th><th>status</th><th>received</"
         "th><th>duplicates</th><th>rejected</th><th>bad signatures</th><th>rate limited</th><th>queued</th><th>dead</"
         "th><th>last delivery</th><th>last error</th></tr>\n";
    for (const auto& e : s.endpoints) {
      const auto& ep = e.endpoint;
      const auto jobs = [&](JobState st) {
        const auto it = e.jobs.find(st);
        return num(it == e.jobs.end() ? 0 : it->second);
      };
      b += "<tr data-endpoint=\"" + esc(ep.id) + "\"><td><a href=\"" + std::string(k_events_path) +
           "?endpoint=" + esc(q(ep.id)) + "\">" + esc(ep.id) + "</a></td><td>" + esc(to_string(ep.provider)) +
           "</td><td>" + esc(ep.label) + "</td>" + state_cell(to_string(ep.status)) + "<td class=\"num\" " +
           "data-count=\"received\">" + num(ep.received) + "</td><td class=\"num\" data-count=\"duplicates\">" +
           num(ep.duplicates) + "</td><td class=\"num\" data-count=\"rejected\">" + num(ep.rejected) +
           "</td><td class=\"num\" data-count=\"verificationFailures\">" + num(ep.verification_failures) +
           "</td><td class=\"num\" data-count=\"rateLimited\">" + num(ep.rate_limited) +
           "</td><td class=\"num\" data-count=\"queued\">" + jobs(JobState::queued) +
           "</td><td class=\"num\" data-count=\"dead\">" + jobs(JobState::dead) + "</td><td>" +
           time_text(ep.last_delivery_at) + "</td><td>" +
           (ep.last_error
                ? esc(format_time_ms(ep.last_error->at) + " " + ep.last_error->code + ": " + ep.last_error->message)
                : std::string("-")) +
           "</td></tr>\n";
    }
    b += "</table>\n";
  }

  b += "<h2>Events</h2>\n" + filter_form(s, req);
  if (s.events.items.empty()) b += "<p id=\"no-events\">No events match.</p>\n";
  else {
    b += "<table id=\"events\"><tr><th>event</th><th>endpoint</th><th>provider</th><th>type</th><th>event key</"
         "th><th>job</th><th>received</th><th></th></tr>\n";
    for (const auto& ev : s.events.items) {
      const std::string state = ev.job_state ? std::string(to_string(*ev.job_state)) : "-";
      std::string actions;
      if (ev.job_state == JobState::dead || ev.job_state == JobState::failed)
        if (auto job = newest_job(ctx, who->caller, ev.id)) actions += retry_form(*who, job->id, back) + " ";
      actions += replay_form(*who, ev.id, back);
      b += "<tr data-event=\"" + esc(ev.id) + "\"><td><a href=\"" + std::string(k_events_path) + "/" + esc(q(ev.id)) +
           "\">" + esc(ev.id) + "</a></td><td>" + esc(ev.endpoint_id) + "</td><td>" + esc(to_string(ev.provider)) +
           "</td><td>" + esc(ev.event_type) + "</td><td>" + esc(ev.event_key) + "</td>" + state_cell(state) + "<td>" +
           time_text(ev.received_at) + "</td><td>" + actions + "</td></tr>\n";
    }
    b += "</table>\n";
  }
  b += "<p>";
  if (req.query_param("cursor"))
    b += "<a href=\"" + std::string(k_events_path) + "?" + esc(filters_query(req)) + "\">First page</a> ";
  if (s.events.next_cursor)
    b += "<a id=\"next-page\" href=\"" + std::string(k_events_path) + "?cursor=" + esc(q(*s.events.next_cursor)) +
         esc(filters_query(req)) + "\">Next page</a>";
  b += "</p>\n";
  HtmlPage p;
  p.title = "Connector events";
  p.body = std::move(b);
  return render(p);
}

// GET /admin/connector-events/:id — one event: its fields, headers, body, jobs, and the forms.
Result<http::Response> event_page(DaemonContext& ctx, const http::Request& req, const Caller*) {
  auto who = page_caller(ctx, req);
  if (!who) return login_needed();
  const std::string& id = req.params.at("id");
  auto ev = ctx.webhooks.get_event(who->caller, id);
  if (!ev)
    return message_page(ev.error().http_status(), "No such event",
                        "<p class=\"refused\">" + esc(ev.error().message) + "</p><p><a href=\"" +
                            std::string(k_events_path) + "\">Back to the events</a></p>");
  const std::string back = std::string(k_events_path) + "/" + q(id);
  std::string b = nav(*who) + "<h1>Event " + esc(ev->id) + "</h1>\n";
  if (auto note = req.query_param("note"); note && !note->empty())
    b += "<p class=\"note\" id=\"note\">" + esc(*note) + "</p>\n";
  b += "<table id=\"event\"><tr><th>endpoint</th><td><a href=\"" + std::string(k_events_path) +
       "?endpoint=" + esc(q(ev->endpoint_id)) + "\">" + esc(ev->endpoint_id) +
       "</a></td></tr><tr><th>provider</th><td>" + esc(to_string(ev->provider)) + "</td></tr><tr><th>type</th><td>" +
       esc(ev->event_type) + "</td></tr><tr><th>event key</th><td>" + esc(ev->event_key) +
       "</td></tr><tr><th>received</th><td>" + time_text(ev->received_at) + "</td></tr><tr><th>job</th>" +
       state_cell(ev->job_state ? std::string(to_string(*ev->job_state)) : "-") + "</tr></table>\n<p>" +
       replay_form(*who, ev->id, back) + "</p>\n";

  b += "<h2>Headers</h2>\n<table id=\"headers\"><tr><th>name</th><th>value</th></tr>\n";
  const json headers = json::parse(ev->headers, nullptr, false);
  if (headers.is_array())
    for (const auto& h : headers)
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string())
        b += "<tr><td>" + bytes_as_text(h[0].get<std::string>()) + "</td><td>" +
             bytes_as_text(h[1].get<std::string>()) + "</td></tr>\n";
  b += "</table>\n<h2>Body</h2>\n<p>" + num(static_cast<int64_t>(ev->body.size())) + " bytes" +
       (ev->body.size() > k_body_shown_bytes ? ", the first " + num(k_body_shown_bytes) + " shown" : "") +
       "</p>\n<pre id=\"body\">" + bytes_as_text(std::string_view(ev->body).substr(0, k_body_shown_bytes)) + "</pre>\n";

  JobFilter f;
  f.event_id = ev->id;
  auto jobs = ctx.webhooks.list_jobs(who->caller, std::move(f), alumia::Page{.limit = 20, .cursor = {}});
  b += "<h2>Jobs</h2>\n";
  if (!jobs || jobs->items.empty()) b += "<p>No relay jobs.</p>\n";
  else {
    b += "<table id=\"event-jobs\"><tr><th>job</th><th>state</th><th>attempts</th><th>last status</th><th>last "
         "error</th><th>created</th><th></th></tr>\n";
    for (const auto& j : jobs->items) {
      const bool retryable = j.state == JobState::dead || j.state == JobState::failed;
      b += "<tr data-job=\"" + esc(j.id) + "\"><td>" + esc(j.id) + "</td>" + state_cell(to_string(j.state)) +
           "<td class=\"num\">" + num(j.attempts) + "</td><td>" + (j.last_status ? num(*j.last_status) : "-") +
           "</td><td>" + esc(j.last_error.value_or("-")) + "</td><td>" + time_text(j.created_at) + "</td><td>" +
           (retryable ? retry_form(*who, j.id, back) : std::string()) + "</td></tr>\n";
    }
    b += "</table>\n";
  }
  HtmlPage p;
  p.title = "Event " + ev->id;
  p.body = std::move(b);
  return render(p);
}

// POST /admin/jobs/:id/retry and POST /admin/connector-events/:id/replay (forms): then 303 back.
http::Response after_action(const Form& form, const std::string& note) {
  const std::string back = back_path(form, std::string(k_events_path));
  return see_other(back + (back.find('?') == std::string::npos ? "?" : "&") + "note=" + q(note));
}

Result<http::Response> retry_form_post(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Form form = http::form_decode(req.body);
  auto who = form_caller(ctx, req, form);
  if (auto* refused = std::get_if<http::Response>(&who)) return std::move(*refused);
  auto job = ctx.webhooks.retry_job(std::get<PageCaller>(who).caller, req.params.at("id"));
  if (!job)
    return message_page(job.error().http_status(), "Retry refused",
                        "<p class=\"refused\">" + esc(job.error().message) + "</p>");
  return after_action(form, "Job " + job->id + " queued again.");
}

Result<http::Response> replay_form_post(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Form form = http::form_decode(req.body);
  auto who = form_caller(ctx, req, form);
  if (auto* refused = std::get_if<http::Response>(&who)) return std::move(*refused);
  auto job = ctx.webhooks.replay_event(std::get<PageCaller>(who).caller, req.params.at("id"));
  if (!job)
    return message_page(job.error().http_status(), "Replay refused",
                        "<p class=\"refused\">" + esc(job.error().message) + "</p>");
  return after_action(form, "Event replayed: job " + job->id + ".");
}

}  // namespace

void add_page_routes(std::vector<Route>& routes) {
  const auto page = [&](std::string_view method, std::string_view pattern, Handler h, std::string_view summary) {
    routes.push_back({method, pattern, std::move(h), Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                      k_on_control, summary});
  };
  routes.push_back({"POST", "/api/v1/admin/login-links", mint_login_link, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control,
                    "a single-use login link for the admin pages (SPEC §9; {\"page\": \"connectors\"} to land there)"});
  page("GET", "/admin/login", login, "admin pages: exchange a login link for a session cookie");
  page("POST", "/admin/logout", logout, "admin pages: end the session (form, CSRF-checked)");
  page("GET", k_events_path, events_page, "admin pages: endpoints, jobs and events (HTML; session cookie)");
  page("GET", "/admin/connector-events/:id", event_page, "admin pages: one event, its headers and body");
  page("POST", "/admin/connector-events/:id/replay", replay_form_post, "admin pages: replay an event (form)");
  page("POST", "/admin/jobs/:id/retry", retry_form_post, "admin pages: retry a job (form)");
  add_connector_page_routes(routes);
}

}  // namespace alumia::daemon
