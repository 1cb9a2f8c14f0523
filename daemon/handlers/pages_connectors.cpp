// The connectors page (SPEC §9): the catalog and the user's connections, a Connect button per OAuth
// connector that opens the provider in a normal new tab, a form per API-key connector (secret fields as
// password inputs, never echoed back), and the OAuth result page that tells the originating page the
// outcome, so that it turns to Connected without a reload (polling GET /admin/connectors/status is the
// fallback). Sessions, CSRF and the page frame: pages/session.cpp, pages/html.cpp.
#include "pages/html.hpp"
#include "pages/oauth_result.hpp"
#include "pages/session.hpp"
#include "routes.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

#include <nlohmann/json.hpp>

namespace alumia::daemon {
namespace {

using nlohmann::json;
using namespace pages;

constexpr std::string_view k_connectors_path = "/admin/connectors";

// Listens for the result page's announcement on its three channels and polls as the fallback; renders
// the states with textContent only.
const Inline& connectors_script() {
  static const Inline k_script = make_inline(R"js(
(function () {
  'use strict';
  var statusUrl = '/admin/connectors/status';
  function stateOf(list) {
    if (list.some(function (c) { return c.status === 'active'; })) return ['Connected', 'connected'];
    if (list.length === 0) return ['Not connected', 'none'];
    return [list[0].status, list[0].status];
  }
  function render(data) {
    var by = {};
    (data.connections || []).forEach(function (c) { (by[c.connector] = by[c.connector] || []).push(c); });
    document.querySelectorAll('tr[data-connector]').forEach(function (tr) {
      var cell = tr.querySelector('.conn-state');
      if (!cell) return;
      var s = stateOf(by[tr.getAttribute('data-connector')] || []);
      cell.textContent = s[0];
      cell.setAttribute('data-state', s[1]);
      cell.className = 'conn-state state state-' + s[1];
    });
    var body = document.getElementById('connections-body');
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    (data.connections || []).forEach(function (c) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-connection', c.id);
      [c.id, c.connector, c.label, c.status, c.accountLabel || ''].forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = v;
        if (i === 3) { td.className = 'state state-' + v; td.setAttribute('data-state', v); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function refresh() {
    fetch(statusUrl, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) render(d); })
      .catch(function () {});
  }
  function announced(msg) {
    if (!msg || typeof msg !== 'object' || typeof msg.result !== 'string') return;
    var note = document.getElementById('oauth-note');
    if (note) {
      note.textContent = (msg.result === 'success' ? 'Connected: ' : 'Not connected: ') + String(msg.message || '');
      note.hidden = false;
    }
    refresh();
  }
  try { new BroadcastChannel('alumia-connector-oauth').onmessage = function (e) { announced(e.data); }; } catch (e) {}
  window.addEventListener('storage', function (e) {
    if (e.key !== 'alumia:connector-oauth' || !e.newValue) return;
    try { announced(JSON.parse(e.newValue)); } catch (err) {}
  });
  window.addEventListener('message', function (e) { if (e.origin === location.origin) announced(e.data); });
  setInterval(refresh, 3000);
})();
)js");
  return k_script;
}

const Inline& result_script() {
  static const Inline k_script = make_inline(R"js(
(function () {
  'use strict';
  var msg;
  try { msg = JSON.parse(document.getElementById('alumia-outcome').textContent); } catch (e) { return; }
  try { var bc = new BroadcastChannel('alumia-connector-oauth'); bc.postMessage(msg); bc.close(); } catch (e) {}
  try {
    localStorage.setItem('alumia:connector-oauth', JSON.stringify({ result: msg.result, connectionId: msg.connectionId,
      message: msg.message, at: Date.now() }));
  } catch (e) {}
  try { if (window.opener && window.opener !== window) window.opener.postMessage(msg, location.origin); } catch (e) {}
  setTimeout(function () { window.close(); }, 1500);
})();
)js");
  return k_script;
}

std::string connection_rows(const std::vector<Connection>& list) {
  std::string out;
  for (const auto& c : list) {
    const std::string st(to_string(c.status));
    out += "<tr data-connection=\"" + esc(c.id) + "\"><td>" + esc(c.id) + "</td><td>" + esc(c.connector_slug) +
           "</td><td>" + esc(c.label) + "</td><td class=\"state state-" + esc(st) + "\" data-state=\"" + esc(st) +
           "\">" + esc(st) + "</td><td>" + esc(c.account_label) + "</td></tr>\n";
  }
  return out;
}

Result<std::vector<Connection>> connections_of(DaemonContext& ctx, const Caller& caller) {
  auto page = TRY(ctx.connections.list(caller, ConnectionFilter{}, alumia::Page{.limit = 200, .cursor = {}}));
  std::erase_if(page.items, [](const Connection& c) { return c.status == ConnectionStatus::revoked; });
  return std::move(page.items);
}

std::string credential_form(const PageCaller& who, const Connector& c) {
  std::string out = "<form method=\"post\" action=\"/admin/connectors/" + esc(q(c.slug)) +
                    "/credentials\" autocomplete=\"off\" data-credentials=\"" + esc(c.slug) + "\">" +
                    csrf_field(who.session) + "<label>Label <input name=\"label\" value=\"default\"></label>";
  for (const auto& f : c.credential_fields)
    out += "<label>" + esc(f.label.empty() ? f.key : f.label) + " <input name=\"field." + esc(f.key) + "\" type=\"" +
           (f.secret ? "password" : "text") + "\"" + (f.required ? " required" : "") +
           (f.placeholder ? " placeholder=\"" + esc(*f.placeholder) + "\"" : std::string()) + "></label>";
  return out + "<button type=\"submit\">Save</button></form>";
}

// GET /admin/connectors
Result<http::Response> connectors_page(DaemonContext& ctx, const http::Request& req, const Caller*) {
  auto who = page_caller(ctx, req);
  if (!who) return login_needed();
  auto list = TRY(connections_of(ctx, who->caller));
  std::string b = nav(*who) + "<h1>Connectors</h1>\n";
  if (auto note = req.query_param("note"); note && !note->empty())
    b += "<p class=\"note\" id=\"note\">" + esc(*note) + "</p>\n";
  b += "<p class=\"note\" id=\"oauth-note\" hidden></p>\n";
  b += "<table id=\"connectors\"><tr><th>connector</th><th>name</th><th>authorization</th><th>state</th><th></th></"
       "tr>\n";
  for (const auto& c : ctx.catalog.all()) {
    bool active = false;
    const Connection* latest = nullptr;
    for (const auto& conn : list)
      if (conn.connector_slug == c.slug) {
        active = active || conn.status == ConnectionStatus::active;
        if (!latest) latest = &conn;
      }
    const std::string state = active ? "connected" : latest ? std::string(to_string(latest->status)) : "none";
    const std::string state_text = active ? "Connected" : latest ? state : "Not connected";
    std::string action;
    if (c.availability != Availability::available) action = esc(c.availability_reason);
    else if (c.auth_type == AuthType::api_key) action = credential_form(*who, c);
    else
      // A normal new tab (never a sized popup); rel=opener so that the result page may also postMessage.
      action = "<form method=\"post\" action=\"/admin/connectors/" + esc(q(c.slug)) +
               "/connect\" target=\"_blank\" rel=\"opener\">" + csrf_field(who->session) +
               "<button type=\"submit\" data-connect=\"" + esc(c.slug) + "\">Connect</button></form>";
    b += "<tr data-connector=\"" + esc(c.slug) + "\"><td>" + esc(c.slug) + "</td><td>" + esc(c.name) + "</td><td>" +
         esc(to_string(c.auth_type)) + "</td><td class=\"conn-state state state-" + esc(state) + "\" data-state=\"" +
         esc(state) + "\">" + esc(state_text) + "</td><td>" + action + "</td></tr>\n";
  }
  b += "</table>\n<h2>Your connections</h2>\n<table id=\"connections\"><thead><tr><th>connection</th><th>connector</"
       "th><th>label</th><th>status</th><th>account</th></tr></thead><tbody id=\"connections-body\">\n" +
       connection_rows(list) + "</tbody></table>\n";
  HtmlPage p;
  p.title = "Connectors";
  p.body = std::move(b);
  p.scripts = {&connectors_script()};
  p.connect_self = true;
  return render(p);
}

// GET /admin/connectors/status — the poll: the user's connections (no secrets), for the page's script.
Result<http::Response> connectors_status(DaemonContext& ctx, const http::Request& req, const Caller*) {
  auto who = page_caller(ctx, req);
  if (!who) return fail(ErrorCode::unauthorized, "no admin session: run `alumia-connect admin open`");
  auto list = TRY(connections_of(ctx, who->caller));
  json items = json::array();
  for (const auto& c : list)
    items.push_back({{"id", c.id},
                     {"connector", c.connector_slug},
                     {"label", c.label},
                     {"status", std::string(to_string(c.status))},
                     {"accountLabel", c.account_label}});
  http::Response r;
  r.body = json{{"connections", std::move(items)}}.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// POST /admin/connectors/:slug/connect (form, in the new tab): a pending connection, then on to the
// provider. A page that moves on by itself rather than a 303: the pages' form-action 'self' would stop
// a redirect from the form's answer to the provider's origin.
Result<http::Response> connect(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Form form = http::form_decode(req.body);
  auto who = form_caller(ctx, req, form);
  if (auto* refused = std::get_if<http::Response>(&who)) return std::move(*refused);
  const Caller& caller = std::get<PageCaller>(who).caller;
  auto started = ctx.connections.start(caller, StartConnection{req.params.at("slug"), form_value(form, "label")});
  if (!started)
    return message_page(started.error().http_status(), "Cannot connect",
                        "<p class=\"refused\">" + esc(started.error().message) + "</p>");
  if (!started->oauth_url)
    return message_page(200, "Nothing to authorize",
                        "<p>" + esc(started->connection.connector_slug) + " (" + esc(started->connection.label) +
                            ") is " + esc(to_string(started->connection.status)) + ".</p>");
  const std::string& url = *started->oauth_url;
  HtmlPage p;
  p.title = "Connecting " + started->connection.connector_slug;
  p.body = "<h1>" + esc(p.title) + "</h1>\n<p><a id=\"continue\" href=\"" + esc(url) +
           "\">Continue to the provider</a></p>\n";
  http::Response r = render(p);
  r.body.insert(r.body.find("<title>"), "<meta http-equiv=\"refresh\" content=\"0;url=" + esc(url) + "\">");
  return r;
}

// POST /admin/connectors/:slug/credentials (form): an API-key connection, its values checked and sealed.
Result<http::Response> credentials(DaemonContext& ctx, const http::Request& req, const Caller*) {
  Form form = http::form_decode(req.body);
  auto who = form_caller(ctx, req, form);
  const auto wipe_form = [&] {
    for (auto& [k, v] : form) wipe_string(v);
  };
  if (auto* refused = std::get_if<http::Response>(&who)) {
    wipe_form();
    return std::move(*refused);
  }
  const Caller& caller = std::get<PageCaller>(who).caller;
  SubmitCredentials submit;
  for (auto& [k, v] : form)
    if (k.starts_with("field.") && !v.empty()) submit.values[k.substr(6)] = v;
  const std::string slug = req.params.at("slug");
  auto started = ctx.connections.start(caller, StartConnection{slug, form_value(form, "label")});
  wipe_form();
  Result<Connection> saved = started ? ctx.connections.submit_credentials(caller, started->connection.id, submit)
                                     : Result<Connection>(std::unexpected(started.error()));
  for (auto& [k, v] : submit.values) wipe_string(v);
  if (!saved)
    return message_page(saved.error().http_status(), "Credentials refused",
                        "<p class=\"refused\">" + esc(saved.error().message) + "</p><p><a href=\"" +
                            std::string(k_connectors_path) + "\">Back to the connectors</a></p>");
  return see_other(std::string(k_connectors_path) +
                   "?note=" + q(slug + " (" + saved->label + ") is " + std::string(to_string(saved->status)) + "."));
}

}  // namespace

namespace pages {

http::Response oauth_result_page(const oauth::CallbackOutcome& o, int status) {
  // The data block is JSON inside <script type="application/json"> (never executed): '<', '>' and '&'
  // as \u escapes so that no text can close the element.
  std::string data = json{{"result", o.result}, {"connectionId", o.connection_id}, {"message", o.message}}.dump();
  std::string safe;
  for (char c : data) {
    if (c == '<') safe += "\\u003c";
    else if (c == '>') safe += "\\u003e";
    else if (c == '&') safe += "\\u0026";
    else safe += c;
  }
  HtmlPage p;
  p.status = status;
  p.title = o.ok ? "Connected" : "Connection failed";
  p.body = "<h1>" + esc(p.title) + "</h1>\n<p id=\"message\">" + esc(o.message) +
           "</p>\n<p>You can close this tab and return to the page or terminal you started from.</p>\n"
           "<script type=\"application/json\" id=\"alumia-outcome\">" +
           safe + "</script>\n";
  p.scripts = {&result_script()};
  p.no_forms = true;
  return render(p);
}

}  // namespace pages

void add_connector_page_routes(std::vector<Route>& routes) {
  const auto page = [&](std::string_view method, std::string_view pattern, Handler h, std::string_view summary) {
    routes.push_back({method, pattern, std::move(h), Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                      k_on_control, summary});
  };
  page("GET", k_connectors_path, connectors_page, "admin pages: the catalog and your connections (HTML)");
  page("GET", "/admin/connectors/status", connectors_status, "admin pages: your connections' states (the page's poll)");
  page("POST", "/admin/connectors/:slug/connect", connect, "admin pages: start an OAuth connection (form, new tab)");
  page("POST", "/admin/connectors/:slug/credentials", credentials, "admin pages: save an API-key connection (form)");
}

}  // namespace alumia::daemon
