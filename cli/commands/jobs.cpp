// alumia-connect jobs list [--state S]|retry ID|retry --state dead|failed [--since WHEN]
#include <alumia/base/try.hpp>
#include "credentials_util.hpp"

#include <alumia/base/vocabulary.hpp>

namespace alumia::cli {
namespace {

constexpr const char* k_jobs = "/api/v1/jobs";
constexpr std::size_t k_error_width = 60;

std::string last_result(const json& j) {
  if (j.contains("lastStatus") && j["lastStatus"].is_number_integer()) return "HTTP " + j["lastStatus"].dump();
  std::string error = jstr(j, "lastError");
  if (error.size() > k_error_width) error = error.substr(0, k_error_width - 3) + "...";
  return error.empty() ? "-" : error;
}

CliStatus list(CliContext& ctx, const std::string& state, int limit) {
  auto client = TRY(ctx.client());
  auto data =
      TRY(client->get(with_query(k_jobs, {{"state", state}, {"limit", limit > 0 ? std::to_string(limit) : ""}})));
  if (ctx.global.json) {
    ctx.print_data(data);
    return {};
  }
  Table t{{"ID", "EVENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST RESULT", "UPDATED"}, {}};
  if (data.contains("items") && data["items"].is_array())
    for (const auto& j : data["items"])
      t.rows.push_back({jstr(j, "id"), jstr(j, "eventId"), jstr(j, "state"), jdisplay(j, "attempts"),
                        short_time(jstr(j, "nextAttemptAt")), last_result(j), short_time(jstr(j, "updatedAt"))});
  if (t.rows.empty()) {
    ctx.note(state.empty() ? "No jobs." : "No " + state + " jobs.");
    return {};
  }
  print_table(ctx.out, t, [&ctx](std::size_t col, const std::string& cell) {
    return col == 2 ? ctx.paint(cell, status_color(cell).c_str()) : cell;
  });
  if (jbool(data, "hasMore")) ctx.note("More jobs exist: use a larger --limit or --state.");
  return {};
}

struct RetryOptions {
  std::string id;
  std::string state;
  std::string since;
};

CliStatus retry(CliContext& ctx, const RetryOptions& o) {
  if (o.id.empty() == o.state.empty())
    return usage_fail("give a job ID, or --state dead|failed (with --since) to retry many jobs");
  auto client = TRY(ctx.client());
  if (!o.id.empty()) {
    auto data = TRY(client->post(std::string(k_jobs) + "/" + encode_component(o.id) + "/retry"));
    if (ctx.global.json) ctx.print_data(data);
    else if (!ctx.global.quiet)
      ctx.out << "Job " << terminal_safe(o.id) << " will be attempted again ("
              << terminal_safe(jstr(data["job"], "state")) << ")\n";
    return {};
  }
  auto data = TRY(client->post(with_query(std::string(k_jobs) + "/retry", {{"state", o.state}, {"since", o.since}})));
  if (ctx.global.json) ctx.print_data(data);
  else if (!ctx.global.quiet)
    ctx.out << "Retried " << terminal_safe(jdisplay(data, "retried")) << ' ' << o.state << " job(s)\n";
  return {};
}

}  // namespace

void register_jobs(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("jobs", "Inspect and retry relay jobs (one per received event and replay)");
  group->require_subcommand(1);

  auto state = std::make_shared<std::string>();
  auto limit = std::make_shared<int>(0);
  std::vector<std::string> states;
  for (const JobState s : job_states()) states.emplace_back(to_string(s));
  auto* ls = group->add_subcommand("list", "List relay jobs, newest first");
  ls->add_option("--state", *state, "Only jobs in this state")->check(CLI::IsMember(states))->type_name("STATE");
  ls->add_option("--limit", *limit, "At most N jobs (1-200; default 50)")->check(CLI::Range(1, 200))->type_name("N");
  on_run(*ls, ctx, [&ctx, state, limit] { return list(ctx, *state, *limit); });

  auto ro = std::make_shared<RetryOptions>();
  auto* rt = group->add_subcommand("retry", "Retry one job now, or every dead (or failed) job with --state");
  rt->add_option("ID", ro->id, "Job id (or use --state)");
  auto* st = rt->add_option("--state", ro->state, "Retry every job in this state")
                 ->check(CLI::IsMember({"dead", "failed"}))
                 ->type_name("STATE");
  rt->add_option("--since", ro->since, "With --state: only jobs created since (15m, 2h, 7d or an RFC 3339 UTC time)")
      ->needs(st)
      ->type_name("WHEN");
  on_run(*rt, ctx, [&ctx, ro] { return retry(ctx, *ro); });
}

}  // namespace alumia::cli
