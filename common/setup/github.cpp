// GitHub setup-webhook: a repository or organisation hook through the REST API
// (https://docs.github.com/rest/repos/webhooks, .../orgs/webhooks), content type json, the
// endpoint's generated secret, events `*` unless --events. One endpoint may be hooked on several
// targets: the state remembers each target's hook id, {"hooks":[{"target":"repo:o/r","id":123}]}.
// A re-run patches the remembered hook; without one (or when it is gone) it adopts the hook whose
// config.url is the receive URL before creating one, so a target never gets a second hook.
#include "provider_call.hpp"

#include <alumia/base/try.hpp>
#include <alumia/setup/registrar.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace alumia::setup {

namespace {

using nlohmann::json;

constexpr std::string_view k_name = "GitHub";
constexpr int k_max_pages = 10;  // 1,000 hooks: GitHub allows 20 per event and target

// --repo OWNER/NAME or --org ORG, checked: an owner or org is 1-39 letters, digits and hyphens, not
// starting with a hyphen; a repository name 1-100 of letters, digits, '.', '-', '_', not "." or "..".
struct Target {
  bool org = false;
  std::string name;  // "owner/repo" or "org"

  std::string key() const { return (org ? "org:" : "repo:") + name; }
  std::string hooks_path() const { return (org ? "/orgs/" : "/repos/") + name + "/hooks"; }
  std::string describe() const { return (org ? "organisation " : "repository ") + name; }
  // The OAuth scope GitHub wants for these hooks (`repo` includes admin:repo_hook).
  std::string_view scope() const { return org ? "admin:org_hook" : "admin:repo_hook (or repo)"; }
};

bool valid_owner(std::string_view s) {
  if (s.empty() || s.size() > 39 || s.front() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool valid_repo_name(std::string_view s) {
  if (s.empty() || s.size() > 100 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
  });
}

// A GitHub event name (push, pull_request_review_comment, ...) or "*".
bool valid_event(std::string_view s) {
  if (s == "*") return true;
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

const detail::EventRule k_events{valid_event, "GitHub event name",
                                 "lower-case letters and '_', e.g. push, pull_request; * for all"};

Result<Target> target_of(const SetupOptions& options) {
  if (options.repo.has_value() == options.org.has_value())
    return fail(ErrorCode::validation_error,
                "a github setup-webhook needs exactly one of --repo OWNER/NAME (a repository hook) or --org ORG "
                "(an organisation hook)");
  if (options.org) {
    if (!valid_owner(*options.org))
      return fail(ErrorCode::validation_error,
                  "--org must be a GitHub organisation name (1-39 letters, digits or hyphens, not starting with a "
                  "hyphen)");
    return Target{true, *options.org};
  }
  const std::string& repo = *options.repo;
  const auto slash = repo.find('/');
  if (slash == std::string::npos || !valid_owner(repo.substr(0, slash)) || !valid_repo_name(repo.substr(slash + 1)))
    return fail(ErrorCode::validation_error,
                "--repo must be OWNER/NAME (an owner of letters, digits and hyphens; a name of letters, digits, "
                "'.', '-' and '_'), e.g. octo-org/hello-world");
  return Target{false, repo};
}

std::vector<std::string> events_of(const SetupOptions& options) {
  return options.events ? *options.events : std::vector<std::string>{"*"};
}

// The hooks this registrar left last time: target key → hook id (ids that are not positive
// integers are ignored, so a damaged state never reaches a URL).
std::vector<std::pair<std::string, std::int64_t>> remembered(const json& previous) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  if (!previous.is_object()) return out;
  const auto it = previous.find("hooks");
  if (it == previous.end() || !it->is_array()) return out;
  for (const auto& h : *it) {
    if (!h.is_object()) continue;
    const auto target = detail::string_member(h, "target");
    const auto id = h.find("id");
    if (!target || id == h.end() || !id->is_number_integer() || id->get<std::int64_t>() <= 0) continue;
    out.emplace_back(*target, id->get<std::int64_t>());
  }
  return out;
}

json state_of(const std::vector<std::pair<std::string, std::int64_t>>& hooks) {
  json list = json::array();
  for (const auto& [target, id] : hooks) list.push_back({{"target", target}, {"id", id}});
  return {{"hooks", std::move(list)}};
}

class GithubApi {
 public:
  GithubApi(const RegistrarContext& ctx, const Target& target)
      : m_ctx(ctx), m_target(target), m_base(detail::trimmed_base(ctx.api_base)) {}

  Result<http::OutboundResponse> call(std::string method, const std::string& path_or_url, const json* body = nullptr) {
    auto r = detail::bearer_request(m_ctx, std::move(method),
                                    path_or_url.starts_with("/") ? m_base + path_or_url : path_or_url);
    r.headers.emplace_back("Accept", "application/vnd.github+json");
    r.headers.emplace_back("X-GitHub-Api-Version", "2022-11-28");
    if (body) {
      r.body = body->dump();
      r.content_type = "application/json";
    }
    return detail::send(m_ctx, std::move(r), k_name);
  }

  // Our code for an answer that is not a success.
  Error error(const http::OutboundResponse& res) const {
    const json doc = detail::parse_body(res);
    std::string said = detail::provider_text(detail::string_member(doc, "message").value_or(""), m_ctx);
    const std::string http = detail::http_status(res.status, said);
    const std::string reconnect = "`alumia-connect connect --reconnect " + m_ctx.connection_id + "`";
    if (const auto wait = rate_limited(res))
      return {ErrorCode::too_many_requests,
              "GitHub's rate limit for connection " + m_ctx.connection_id + " is spent (" + http + "); retry in " +
                  std::to_string(*wait) + " s",
              *wait};
    switch (res.status) {
      case 401:
        return {ErrorCode::validation_error,
                "GitHub refused the access token of connection " + m_ctx.connection_id + " (" + http +
                    "): reconnect it with " + reconnect,
                0};
      case 403:
        return {ErrorCode::validation_error,
                "GitHub refused connection " + m_ctx.connection_id + " the hooks of " + m_target.describe() + " (" +
                    http + "): its token needs the " + std::string(m_target.scope()) +
                    " scope and admin rights there; reconnect it with " + reconnect,
                0};
      case 404:
        return {ErrorCode::not_found,
                "GitHub has no " + m_target.describe() + " whose hooks connection " + m_ctx.connection_id +
                    " may manage (" + http + "): check the name, and that its token has the " +
                    std::string(m_target.scope()) + " scope and admin rights there (reconnect with " + reconnect + ")",
                0};
      case 400:
      case 422: {
        std::string details;
        if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array())
          for (const auto& e : doc["errors"]) {
            std::string one = e.is_string() ? e.get<std::string>() : detail::string_member(e, "message").value_or("");
            if (one.empty()) one = detail::string_member(e, "code").value_or("");
            if (!one.empty()) details += (details.empty() ? "" : "; ") + detail::provider_text(one, m_ctx);
          }
        return {ErrorCode::validation_error,
                "GitHub refused the hook on " + m_target.describe() + " (" + http +
                    (details.empty() ? "" : " — " + details) + ")",
                0};
      }
      default:
        break;
    }
    return detail::unexpected_answer(k_name, res.status, http);
  }

  Result<json> expect_json(const http::OutboundResponse& res) const {
    if (res.status < 200 || res.status >= 300) return std::unexpected(error(res));
    json doc = detail::parse_body(res);
    if (!doc.is_object() && !doc.is_array())
      return fail(ErrorCode::service_unavailable,
                  "GitHub answered HTTP " + std::to_string(res.status) + " without a JSON body");
    return doc;
  }

  // Every hook of the target (GET .../hooks?per_page=100, then Link rel="next" on the same base).
  Result<std::vector<json>> list_hooks() {
    std::vector<json> hooks;
    std::string next = m_target.hooks_path() + "?per_page=100";
    for (int page = 0; page < k_max_pages && !next.empty(); ++page) {
      const auto res = TRY(call("GET", next));
      const json doc = TRY(expect_json(res));
      if (!doc.is_array()) return fail(ErrorCode::service_unavailable, "GitHub's list of hooks is not an array");
      for (const auto& h : doc)
        if (h.is_object()) hooks.push_back(h);
      next = next_link(res);
    }
    return hooks;
  }

  // The JSON of a hook we want: what GitHub takes on create and on PATCH alike.
  json hook_body(const std::vector<std::string>& events, bool create) const {
    json config = {
        {"url", m_ctx.receive_url}, {"content_type", "json"}, {"secret", m_ctx.secret.str()}, {"insecure_ssl", "0"}};
    json body = {{"config", std::move(config)}, {"events", events}, {"active", true}};
    if (create) body["name"] = "web";
    return body;
  }

 private:
  // GitHub's primary limit (403 or 429 with x-ratelimit-remaining: 0) and its secondary limit (a
  // Retry-After): the seconds to wait, else nullopt.
  std::optional<int> rate_limited(const http::OutboundResponse& res) const {
    if (res.status != 403 && res.status != 429) return std::nullopt;
    if (res.header("retry-after")) return detail::retry_after(res, 60);
    if (res.header("x-ratelimit-remaining") == std::optional<std::string>("0")) {
      long long reset = 0;
      const auto value = res.header("x-ratelimit-reset").value_or("");
      if (std::from_chars(value.data(), value.data() + value.size(), reset).ec == std::errc())
        return detail::seconds_until(res, reset).value_or(60);
      return 60;
    }
    if (res.status == 429) return 60;
    return std::nullopt;
  }

  // The rel="next" URL of a Link header, when it lies under our API base (never anywhere else).
  std::string next_link(const http::OutboundResponse& res) const {
    const std::string link = res.header("link").value_or("");
    for (std::size_t at = 0; at < link.size();) {
      const std::size_t open = link.find('<', at);
      const std::size_t close = link.find('>', open);
      if (open == std::string::npos || close == std::string::npos) break;
      const std::size_t end = std::min(link.find(',', close), link.size());
      const std::string url = link.substr(open + 1, close - open - 1);
      const std::string params = link.substr(close + 1, end - close - 1);
      if (params.find("rel=\"next\"") != std::string::npos)
        return url.starts_with(m_base + m_target.hooks_path() + "?") ? url : std::string{};
      at = end + 1;
    }
    return {};
  }

  const RegistrarContext& m_ctx;
  const Target& m_target;
  std::string m_base;
};

std::int64_t hook_id(const json& hook) {
  const auto it = hook.find("id");
  return it != hook.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

json report_of(const json& hook, const Target& target) {
  json report = {{"hookId", hook_id(hook)}, {"target", target.key()}};
  report["events"] = hook.contains("events") ? hook["events"] : json::array();
  report["active"] = hook.contains("active") && hook["active"].is_boolean() ? hook["active"].get<bool>() : false;
  const auto config = hook.find("config");
  report["url"] = config != hook.end() ? detail::string_member(*config, "url").value_or("") : "";
  if (const auto last = hook.find("last_response"); last != hook.end() && last->is_object()) {
    json r = json::object();
    if (last->contains("code")) r["code"] = (*last)["code"];
    for (const char* k : {"status", "message"})
      if (const auto v = detail::string_member(*last, k)) r[k] = *v;
    report["lastResponse"] = std::move(r);
  }
  return report;
}

class GithubRegistrar final : public Registrar {
 public:
  Provider provider() const override { return Provider::github; }
  bool generates_secret() const override { return true; }

  Status check(const SetupOptions& options) const override {
    TRY(target_of(options));
    if (options.drop_pending)
      return fail(ErrorCode::validation_error, "--drop-pending applies to telegram connections only");
    return detail::check_events(options.events, k_events);
  }

  Result<Registration> apply(const RegistrarContext& ctx, const SetupOptions& options) const override {
    TRY(check(options));
    const Target target = TRY(target_of(options));
    if (ctx.secret.empty())
      return fail(ErrorCode::internal, "the endpoint has no webhook secret to register with GitHub");
    GithubApi api(ctx, target);
    const auto events = events_of(options);
    auto hooks = remembered(ctx.previous);
    const auto mine = std::find_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == target.key(); });

    std::optional<json> hook;
    if (mine != hooks.end()) hook = TRY(patch(api, target, mine->second, events));  // nullopt: gone
    if (!hook) {
      const auto all = TRY(api.list_hooks());
      const auto same_url = std::find_if(all.begin(), all.end(), [&](const json& h) {
        const auto config = h.find("config");
        return config != h.end() && detail::string_member(*config, "url") == ctx.receive_url;
      });
      if (same_url != all.end()) hook = TRY(patch(api, target, hook_id(*same_url), events));
    }
    if (!hook) {
      const json body = api.hook_body(events, true);
      const auto res = TRY(api.call("POST", target.hooks_path(), &body));
      hook = TRY(api.expect_json(res));
    }
    const std::int64_t id = hook_id(*hook);
    if (id <= 0) return fail(ErrorCode::service_unavailable, "GitHub answered without the hook's id");

    std::erase_if(hooks, [&](const auto& h) { return h.first == target.key(); });
    hooks.emplace_back(target.key(), id);
    Registration out;
    out.state = state_of(hooks);
    out.report = report_of(*hook, target);
    out.still_registered = true;
    return out;
  }

  Result<Registration> remove(const RegistrarContext& ctx, const SetupOptions& options) const override {
    const Target target = TRY(target_of(options));
    GithubApi api(ctx, target);
    auto hooks = remembered(ctx.previous);
    const auto mine = std::find_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == target.key(); });
    std::int64_t id = mine != hooks.end() ? mine->second : 0;
    if (id == 0) {
      // The state was lost: the hook on this target that delivers to our URL, if any.
      for (const json& h : TRY(api.list_hooks())) {
        const auto config = h.find("config");
        if (config != h.end() && detail::string_member(*config, "url") == ctx.receive_url) id = hook_id(h);
      }
      if (id <= 0)
        return fail(ErrorCode::not_found, "no GitHub hook on " + target.describe() + " delivers to " + ctx.receive_url +
                                              ": nothing to remove");
    }
    const auto res = TRY(api.call("DELETE", target.hooks_path() + "/" + std::to_string(id)));
    if (res.status != 404 && (res.status < 200 || res.status >= 300)) return std::unexpected(api.error(res));

    std::erase_if(hooks, [&](const auto& h) { return h.first == target.key(); });
    Registration out;
    out.state = state_of(hooks);
    out.report = {{"hookId", id}, {"target", target.key()}, {"deleted", res.status != 404}};
    out.still_registered = !hooks.empty();
    return out;
  }

 private:
  // PATCH .../hooks/{id}: the hook as GitHub now has it, or nullopt when it is gone (404).
  static Result<std::optional<json>> patch(GithubApi& api, const Target& target, std::int64_t id,
                                           const std::vector<std::string>& events) {
    const json body = api.hook_body(events, false);
    const auto res = TRY(api.call("PATCH", target.hooks_path() + "/" + std::to_string(id), &body));
    if (res.status == 404) return std::optional<json>{};
    return std::optional<json>(TRY(api.expect_json(res)));
  }
};

}  // namespace

const Registrar& github_registrar() {
  static const GithubRegistrar k_registrar;
  return k_registrar;
}

}  // namespace alumia::setup
