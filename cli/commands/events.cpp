// alumia-connect events list|show ID|replay ID|tail [--follow]|prune --older-than D [--dry-run]
#include "credentials_util.hpp"
#include "event_tail.hpp"

#include <alumia/base/vocabulary.hpp>

#include <algorithm>
#include <alumia/base/try.hpp>
#include <chrono>
#include <cstdio>

namespace alumia::cli {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_events = "/api/v1/connector-events";
constexpr auto k_follow_interval = 1000ms;  // one list request per second while following
constexpr int k_follow_page = 50;
constexpr int k_max_pages_per_poll = 20;  // a burst larger than this between two polls is cut short

std::string event_path(const std::string& id) { return std::string(k_events) + "/" + encode_component(id); }

json items_of(const json& data) {
  return data.is_object() && data.contains("items") && data["items"].is_array() ? data["items"] : json::array();
}

struct ListOptions {
  std::string endpoint;
  std::string status;
  std::string since;
  int limit = 0;
};

CliStatus list(CliContext& ctx, const ListOptions& o) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->get(with_query(k_events, {{"endpoint", o.endpoint},
                                                    {"status", o.status},
                                                    {"since", o.since},
                                                    {"limit", o.limit > 0 ? std::to_string(o.limit) : ""}})));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  Table t{{"ID", "PROVIDER", "TYPE", "EVENT KEY", "JOB", "RECEIVED"}, {}};
  for (const auto& e : items_of(data))
    t.rows.push_back({jstr(e, "id"), jstr(e, "provider"), jdisplay(e, "eventType"), jstr(e, "eventKey"),
                      jdisplay(e, "jobState"), short_time(jstr(e, "receivedAt"))});
  if (t.rows.empty()) {
    ctx.note("No events.");
    return {};
  }
  print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
    return col == 4 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
  });
  if (jbool(data, "hasMore")) ctx.note("More events exist: use a larger --limit or --since.");
  return {};
}

CliStatus show(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto e = TRY(client->get(event_path(id)));
  if (ctx.global.json) {
    ctx.print_data(e);
    return {};
  }
  const std::string job = jdisplay(e, "jobState");
  print_fields(ctx.out,
               {{"id", jstr(e, "id")},
                {"endpoint", jstr(e, "endpointId")},
                {"provider", jstr(e, "provider")},
                {"event key", jstr(e, "eventKey")},
                {"type", jdisplay(e, "eventType")},
                {"received", jstr(e, "receivedAt")},
                {"job", job}},
               status_fields(ctx));
  std::vector<std::pair<std::string, std::string>> headers;
  if (e.contains("headers") && e["headers"].is_object())
    for (const auto& [name, value] : e["headers"].items())
      headers.emplace_back("  " + name, value.is_string() ? value.get<std::string>() : value.dump());
  ctx.out << "\nheaders (signatures and credentials are not kept):\n";
  print_fields(ctx.out, headers);
  const bool text = jstr(e, "bodyEncoding") != "base64";
  ctx.out << (text ? "\nbody:\n" : "\nbody (base64, not UTF-8):\n");
  const std::string body = terminal_safe(jstr(e, "body"), Layout::block);
  ctx.out << body;
  if (body.empty() || body.back() != '\n') ctx.out << '\n';
  return {};
}

CliStatus replay(CliContext& ctx, const std::string& id) {
  auto client = TRY(ctx.client());
  auto data = TRY(client->post(event_path(id) + "/replay"));
  if (ctx.global.json) ctx.print_data(data);
  else if (!ctx.global.quiet) {
    const json job = data.contains("job") ? data["job"] : json::object();
    ctx.out << "Event " << terminal_safe(id) << " will be relayed again: job " << terminal_safe(jstr(job, "id")) << " ("
            << terminal_safe(jstr(job, "state")) << ")\n";
  }
  return {};
}

struct PruneOptions {
  std::string older_than;
  bool dry_run = false;
};

// "1.4 GB", "312 KB", "17 B": what prune gave up, in decimal units.
std::string bytes_text(int64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1000 && u + 1 < std::size(units)) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

CliStatus prune(CliContext& ctx, const PruneOptions& o) {
  auto client = TRY(ctx.client());
  auto data =
      TRY(client->post(std::string(k_events) + "/prune", json{{"olderThan", o.older_than}, {"dryRun", o.dry_run}}));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  const auto count = [&](const char* key) {
    return data.contains(key) && data[key].is_number_integer() ? data[key].get<int64_t>() : 0;
  };
  const std::string what = std::to_string(count("events")) + " delivered or dead events received before " +
                           terminal_safe(jstr(data, "olderThan")) + " (" + std::to_string(count("jobs")) + " jobs, " +
                           bytes_text(count("bytes")) + " of bodies and headers)";
  if (o.dry_run) {
    ctx.out << "Would remove " << what << ".\nNothing was changed; run it again without --dry-run to remove them.\n";
    return {};
  }
  ctx.out << "Removed " << what << "; " << bytes_text(count("reclaimedBytes")) << " given back to the file system.\n";
  return {};
}

struct TailOptions {
  std::string endpoint;
  int lines = 10;
  bool follow = false;
};

// One line per event: NDJSON with --json, so a consumer can read events as they come.
void print_tail_line(CliContext& ctx, const json& e) {
  if (ctx.global.json) {
    ctx.out << e.dump() << '\n';
    return;
  }
  ctx.out << terminal_safe(short_time(jstr(e, "receivedAt"))) << "  " << terminal_safe(jstr(e, "provider")) << "  "
          << terminal_safe(jdisplay(e, "eventType")) << "  " << terminal_safe(jstr(e, "eventKey")) << "  "
          << terminal_safe(jstr(e, "id")) << '\n';
}

// The newest events, newest first. After the first poll, further pages are read only while none of
// their events has been seen, so a burst between two polls is not lost.
CliResult<std::vector<json>> poll(DaemonClient& client, const TailOptions& o, const EventTail& tail, int page_size,
                                  bool first) {
  std::vector<json> window;
  std::string cursor;
  for (int page = 0; page < k_max_pages_per_poll; ++page) {
    auto data = TRY(client.get(
        with_query(k_events, {{"endpoint", o.endpoint}, {"limit", std::to_string(page_size)}, {"cursor", cursor}})));
    bool reached_seen = first;
    for (auto& e : items_of(data)) {
      reached_seen = reached_seen || tail.seen(jstr(e, "id"));
      window.push_back(std::move(e));
    }
    cursor = jstr(data, "nextCursor");
    if (reached_seen || !jbool(data, "hasMore") || cursor.empty()) break;
  }
  return window;
}

CliStatus tail(CliContext& ctx, const TailOptions& o) {
  auto client = TRY(ctx.client());
  EventTail seen;
  const auto print_newest = [&](const std::vector<json>& window) {
    const auto fresh = seen.advance(window);
    const std::size_t lines = static_cast<std::size_t>(o.lines);
    for (std::size_t i = fresh.size() > lines ? fresh.size() - lines : 0; i < fresh.size(); ++i)
      print_tail_line(ctx, fresh[i]);
    ctx.out << std::flush;
    return fresh.size();
  };
  if (!o.follow) {
    auto window = TRY(poll(*client, o, seen, o.lines, true));
    if (print_newest(window) == 0) ctx.note("No events yet.");
    return {};
  }
  InterruptGuard interrupt;  // Ctrl-C ends the loop with exit 130 between polls
  const int page_size = std::max(o.lines, k_follow_page);
  auto window = TRY(poll(*client, o, seen, page_size, true));
  print_newest(window);
  ctx.note("Waiting for events (Ctrl-C to stop)...");
  for (;;) {
    if (interrupt.wait(k_follow_interval)) return cli_fail(k_exit_interrupted, "");
    window = TRY(poll(*client, o, seen, page_size, false));
    for (const auto& e : seen.advance(window)) print_tail_line(ctx, e);
    ctx.out << std::flush;
    if (!ctx.out) return {};  // stdout was closed (`... | head`)
  }
}

}  // namespace

void register_events(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("events", "Inspect, replay, follow and prune received webhook events");
  group->require_subcommand(1);
  std::vector<std::string> states;
  for (const JobState s : job_states()) states.emplace_back(to_string(s));

  auto lo = std::make_shared<ListOptions>();
  auto* ls = group->add_subcommand("list", "List received events, newest first");
  ls->add_option("--endpoint", lo->endpoint, "Only events of this endpoint")->type_name("ID");
  ls->add_option("--status", lo->status, "Only events whose job is in this state")
      ->check(CLI::IsMember(states))
      ->type_name("STATE");
  ls->add_option("--since", lo->since, "Only events received since: an age like 15m, 2h, 7d, or an RFC 3339 UTC time")
      ->type_name("WHEN");
  ls->add_option("--limit", lo->limit, "At most N events (1-200; default 50)")
      ->check(CLI::Range(1, 200))
      ->type_name("N");
  on_run(*ls, ctx, [&ctx, lo] { return list(ctx, *lo); });

  auto sid = std::make_shared<std::string>();
  auto* sh = group->add_subcommand("show", "Show one event with its headers and body");
  sh->add_option("ID", *sid, "Event id")->required();
  on_run(*sh, ctx, [&ctx, sid] { return show(ctx, *sid); });

  auto rid = std::make_shared<std::string>();
  auto* rp = group->add_subcommand("replay", "Relay an event again (a new job)");
  rp->add_option("ID", *rid, "Event id")->required();
  on_run(*rp, ctx, [&ctx, rid] { return replay(ctx, *rid); });

  auto to = std::make_shared<TailOptions>();
  auto* tl = group->add_subcommand("tail", "Print the newest events, oldest first; --follow keeps printing new ones");
  tl->add_option("--endpoint", to->endpoint, "Only events of this endpoint")->type_name("ID");
  tl->add_option("-n,--lines", to->lines, "How many of the newest events to print first (1-200; default 10)")
      ->check(CLI::Range(1, 200))
      ->type_name("N");
  tl->add_flag("-f,--follow", to->follow,
               "Keep polling and print events as they arrive until Ctrl-C (exit 130); with --json one object per line");
  on_run(*tl, ctx, [&ctx, to] { return tail(ctx, *to); });

  auto po = std::make_shared<PruneOptions>();
  auto* pr = group->add_subcommand(
      "prune", "Remove delivered and dead events received before a time, with their jobs (the counters stay)");
  pr->add_option("--older-than", po->older_than, "Events received before this: an age like 30d, 12h, 15m, or a time")
      ->required()
      ->type_name("AGE");
  pr->add_flag("--dry-run", po->dry_run, "Only count what would be removed; change nothing");
  on_run(*pr, ctx, [&ctx, po] { return prune(ctx, *po); });
}

}  // namespace alumia::cli
