// alumia-connect admin events [--endpoint ID] [--provider P] [--state S] [--since WHEN] [--limit N] [--cursor C]
// The admin summary (SPEC §9, GET /api/v1/admin/connector-events; the key needs the admin scope):
// the endpoints with their counters, jobs per state and the oldest queued job, then recent events,
// then the store's size and the retention window.
//
// alumia-connect admin open [--no-browser] [--connectors]
// The admin pages in a browser: a single-use login link (POST /api/v1/admin/login-links), opened with
// $BROWSER or xdg-open, or printed (--no-browser, or no display). The daemon exchanges it for a session
// cookie; the link is then spent, so printing it shows nothing that could be used again.
#include <alumia/base/try.hpp>
#include "credentials_util.hpp"
#include "terminal.hpp"

#include <alumia/base/vocabulary.hpp>

#include <cctype>
#include <cstdio>

namespace alumia::cli {
namespace {

constexpr const char* k_admin_events = "/api/v1/admin/connector-events";
constexpr std::size_t k_error_width = 48;

struct EventsOptions {
  std::string endpoint;
  std::string provider;
  std::string state;
  std::string since;
  std::string cursor;
  int limit = 0;
};

json member(const json& j, const char* key, json fallback) {
  return j.is_object() && j.contains(key) && !j[key].is_null() ? j[key] : fallback;
}

// 3725 → "1h 2m": the two largest units.
std::string age_text(int64_t seconds) {
  const std::pair<int64_t, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  std::string out;
  int shown = 0;
  for (const auto& [size, name] : units) {
    if (seconds >= size || (size == 1 && out.empty())) {
      out += (out.empty() ? "" : " ") + std::to_string(seconds / size) + name;
      seconds %= size;
      if (++shown == 2) break;
    } else if (!out.empty()) {
      break;  // "1d 0h" says less than "1d"
    }
  }
  return out;
}

std::string oldest_text(const json& oldest) {
  if (!oldest.is_object()) return "-";
  const auto age = oldest.contains("ageSeconds") && oldest["ageSeconds"].is_number_integer()
                       ? oldest["ageSeconds"].get<int64_t>()
                       : 0;
  return age_text(age) + " (" + jstr(oldest, "id") + ")";
}

std::string last_error_text(const json& e) {
  const json le = member(e, "lastError", json());
  if (!le.is_object()) return "-";
  std::string text = short_time(jstr(le, "at")) + " " + jstr(le, "code") + ": " + jstr(le, "message");
  if (text.size() > k_error_width) {
    std::size_t cut = k_error_width - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
    text = text.substr(0, cut) + "...";
  }
  return text;
}

void print_endpoints(CliContext& ctx, const json& endpoints) {
  Table t{{"ENDPOINT", "PROVIDER", "LABEL", "STATUS", "RECEIVED", "DUPLICATES", "REJECTED", "BAD SIGNATURES",
           "RATE LIMITED", "QUEUED", "DEAD", "LAST DELIVERY", "LAST ERROR"},
          {}};
  for (const auto& e : endpoints) {
    const json counts = member(e, "counts", json::object());
    const json jobs = member(e, "jobs", json::object());
    t.rows.push_back({jstr(e, "id"), jstr(e, "provider"), jdisplay(e, "label"), jstr(e, "status"),
                      jdisplay(counts, "received"), jdisplay(counts, "duplicates"), jdisplay(counts, "rejected"),
                      jdisplay(counts, "verificationFailures"), jdisplay(counts, "rateLimited"),
                      jdisplay(jobs, "queued"), jdisplay(jobs, "dead"), short_time(jstr(e, "lastDeliveryAt")),
                      last_error_text(e)});
  }
  ctx.out << "Endpoints\n";
  if (t.rows.empty()) ctx.out << "  none (create one with `alumia-connect webhooks create --provider PROVIDER`)\n";
  else
    print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
      return col == 3 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
    });
}

void print_jobs(CliContext& ctx, const json& data) {
  const json jobs = member(data, "jobs", json::object());
  Table t{{}, {{}}};
  for (const JobState s : job_states()) {
    std::string name(to_string(s));
    std::string header = name;
    for (char& c : header) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    t.headers.push_back(header);
    t.rows[0].push_back(jdisplay(jobs, name));
  }
  t.headers.push_back("OLDEST QUEUED");
  t.rows[0].push_back(oldest_text(member(data, "oldestQueuedJob", json())));
  ctx.out << "\nJobs\n";
  print_table(ctx.out, t);
}

void print_events(CliContext& ctx, const json& page) {
  Table t{{"EVENT", "ENDPOINT", "PROVIDER", "TYPE", "EVENT KEY", "JOB", "RECEIVED"}, {}};
  for (const auto& e : member(page, "items", json::array()))
    t.rows.push_back({jstr(e, "id"), jstr(e, "endpointId"), jstr(e, "provider"), jdisplay(e, "eventType"),
                      jstr(e, "eventKey"), jdisplay(e, "jobState"), short_time(jstr(e, "receivedAt"))});
  ctx.out << "\nRecent events\n";
  if (t.rows.empty()) ctx.out << "  none\n";
  else
    print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
      return col == 5 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
    });
  if (jbool(page, "hasMore")) ctx.note("More events: add --cursor " + jstr(page, "nextCursor") + " for the next page.");
}

// The store's size on disk and the retention window (SPEC §9 "Retention").
void print_retention(CliContext& ctx, const json& data) {
  const json days = member(data, "retentionDays", json());
  const json bytes = member(data, "storeBytes", json());
  if (!days.is_number_integer() || !bytes.is_number_integer()) return;
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(bytes.get<int64_t>()) / 1e6);
  const int64_t d = days.get<int64_t>();
  ctx.out << "\nStore " << size << " on disk; delivered and dead events keep their bodies " << d
          << " days and their rows " << 3 * d << " (events-retention-days; an endpoint's retentionDays overrides)\n";
}

CliStatus events(CliContext& ctx, const EventsOptions& o) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->get(with_query(k_admin_events, {{"endpoint", o.endpoint},
                                                          {"provider", o.provider},
                                                          {"state", o.state},
                                                          {"since", o.since},
                                                          {"limit", o.limit > 0 ? std::to_string(o.limit) : ""},
                                                          {"cursor", o.cursor}})));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  print_endpoints(ctx, member(data, "endpoints", json::array()));
  print_jobs(ctx, data);
  print_events(ctx, member(data, "events", json::object()));
  print_retention(ctx, data);
  return {};
}

struct OpenOptions {
  bool no_browser = false;
  bool connectors = false;
};

CliStatus open_pages(CliContext& ctx, const OpenOptions& o) {
  auto client = TRY(ctx.client());
  json body = json::object();
  if (o.connectors) body["page"] = "connectors";
  auto link = TRY(client->post("/api/v1/admin/login-links", body));
  const std::string url = jstr(link, "url");
  if (url.empty()) return cli_fail(k_exit_error, "the daemon returned no login link");
  if (ctx.global.json) {
    ctx.print_data(link);
    return {};
  }
  const std::string page = o.connectors ? "connectors" : "connector events";
  if (!o.no_browser && !no_display(ctx.env)) {
    auto pid = open_browser(url, ctx.env);
    if (pid) {
      reap_child(*pid);
      ctx.note("Opened the admin pages (" + page + ") in your browser. The login link works once, until " +
               jstr(link, "expiresAt") +
               "; if the browser did not open, run `alumia-connect admin open --no-browser`.");
      return {};
    }
    ctx.warn(pid.error().message);
  }
  ctx.out << terminal_safe(url) << '\n';
  ctx.note("Open the link above in a browser on this machine to see the admin pages (" + page +
           "). It works once, until " + jstr(link, "expiresAt") + "; then run `alumia-connect admin open` again.");
  return {};
}

}  // namespace

void register_admin(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("admin", "Inspect the daemon as its administrator (the key needs the admin scope)");
  group->require_subcommand(1);

  auto o = std::make_shared<EventsOptions>();
  std::vector<std::string> states;
  for (const JobState s : job_states()) states.emplace_back(to_string(s));
  auto* ev = group->add_subcommand(
      "events", "Webhook endpoints with their counters, jobs per state, the oldest queued job and recent events");
  ev->add_option("--endpoint", o->endpoint, "Only events of this endpoint")->type_name("ID");
  ev->add_option("--provider", o->provider, "Only events of this provider (github, stripe, ...)")
      ->type_name("PROVIDER");
  ev->add_option("--state", o->state, "Only events whose job is in this state")
      ->check(CLI::IsMember(states))
      ->type_name("STATE");
  ev->add_option("--since", o->since, "Only events received since (15m, 2h, 7d or an RFC 3339 UTC time)")
      ->type_name("WHEN");
  ev->add_option("--limit", o->limit, "At most N events (1-200; default 50)")
      ->check(CLI::Range(1, 200))
      ->type_name("N");
  ev->add_option("--cursor", o->cursor, "The next page of events (the cursor a previous page printed)")
      ->type_name("CURSOR");
  on_run(*ev, ctx, [&ctx, o] { return events(ctx, *o); });

  auto open = std::make_shared<OpenOptions>();
  auto* op = group->add_subcommand(
      "open", "Open the admin pages in your browser through a single-use login link (events, retry, connectors)");
  op->add_flag("--no-browser", open->no_browser, "Print the login link instead of opening a browser");
  op->add_flag("--connectors", open->connectors, "Land on the connectors page instead of the events page");
  on_run(*op, ctx, [&ctx, open] { return open_pages(ctx, *open); });
}

}  // namespace alumia::cli
