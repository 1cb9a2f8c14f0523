#pragma once
// A local stand-in for the GitHub REST API (the daemon's ALUMIA_GITHUB_API_BASE) on 127.0.0.1:0: the
// repository and organisation hooks (list with Link pagination, create, get, patch, delete) kept per
// repo/org like GitHub keeps them, GET /user for an OAuth connection's account label, and every call
// recorded (method, path, query, headers, body). Like GitHub it wants a User-Agent (403 without),
// answers 401 to a token it does not know, 404 for a repo/org it does not have, and 422 to a second
// hook with the same URL. An error can be scripted (script()) for the next calls to a hooks route.
#include "fake_call.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace alumia::test {

class FakeGitHub : public FakeApi {
 public:
  struct Hook {
    std::int64_t id = 0;
    std::string target;  // "repo:o/r" or "org:o"
    nlohmann::json config;
    std::vector<std::string> events;
    bool active = true;
  };
  // `tokens`: the access tokens it accepts (empty: any, e.g. the one an OAuth flow issues); `login`:
  // what GET /user reports.
  explicit FakeGitHub(std::set<std::string> tokens, std::string login = "octocat")
      : FakeApi("application/json; charset=utf-8"), m_tokens(std::move(tokens)), m_login(std::move(login)) {
    server().Get("/user", route([this](const httplib::Request&, httplib::Response& res) {
                   reply(res, 200, {{"login", m_login}, {"id", 1}});
                 }));
    const std::string repo = R"(/repos/([^/]+/[^/]+)/hooks)";
    const std::string org = R"(/orgs/([^/]+)/hooks)";
    for (const auto& [pattern, prefix] : {std::pair{repo, std::string("repo:")}, std::pair{org, std::string("org:")}}) {
      server().Get(pattern, route([this, prefix](const httplib::Request& req, httplib::Response& res) {
                     list(prefix + std::string(req.matches[1]), req, res);
                   }));
      server().Post(pattern, route([this, prefix](const httplib::Request& req, httplib::Response& res) {
                      create(prefix + std::string(req.matches[1]), req, res);
                    }));
      const std::string one = pattern + R"(/(\d+))";
      server().Get(one, route([this, prefix](const httplib::Request& req, httplib::Response& res) {
                     if (Hook* h = find(prefix + std::string(req.matches[1]), std::stoll(req.matches[2]), res))
                       reply(res, 200, json_of(*h));
                   }));
      server().Patch(one, route([this, prefix](const httplib::Request& req, httplib::Response& res) {
                       if (Hook* h = find(prefix + std::string(req.matches[1]), std::stoll(req.matches[2]), res))
                         update(*h, req, res);
                     }));
      server().Delete(one, route([this, prefix](const httplib::Request& req, httplib::Response& res) {
                        if (Hook* h = find(prefix + std::string(req.matches[1]), std::stoll(req.matches[2]), res)) {
                          const std::int64_t id = h->id;
                          std::erase_if(m_hooks, [&](const Hook& x) { return x.id == id; });
                          res.status = 204;
                        }
                      }));
    }
    start();
  }
  ~FakeGitHub() { stop(); }

  // Repositories ("owner/name") and organisations whose hooks the accepted tokens may manage.
  void add_repo(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_targets.insert("repo:" + name);
  }
  void add_org(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_targets.insert("org:" + name);
  }
  // A hook made by someone else (the dashboard, another tool), as GitHub would list it.
  std::int64_t add_hook(const std::string& target, const std::string& url, const std::string& secret = "s") {
    std::lock_guard lock(m_mutex);
    Hook h{m_next_id++,
           target,
           {{"url", url}, {"content_type", "json"}, {"secret", secret}, {"insecure_ssl", "0"}},
           {"push"},
           true};
    m_hooks.push_back(h);
    return h.id;
  }
  // The hooks of a target ("repo:o/r", "org:o"), with their real secrets.
  std::vector<Hook> hooks(const std::string& target) {
    std::lock_guard lock(m_mutex);
    std::vector<Hook> out;
    for (const auto& h : m_hooks)
      if (h.target == target) out.push_back(h);
    return out;
  }

 private:
  void message(httplib::Response& res, int status, const std::string& text) {
    reply(res, status, {{"message", text}, {"documentation_url", "https://docs.github.com/rest"}});
  }

  // A route's handler behind the recording, the User-Agent rule, authentication and scripted errors.
  template <class F>
  httplib::Server::Handler route(F handler) {
    return recorded([this, handler](const httplib::Request& req, httplib::Response& res) {
      if (!gate(req, res)) handler(req, res);
    });
  }

  // True when the request was answered here.
  bool gate(const httplib::Request& req, httplib::Response& res) {
    if (!req.has_header("User-Agent")) {
      message(res, 403,
              "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
      return true;
    }
    const std::string auth = req.get_header_value("Authorization");
    if (!auth.starts_with("Bearer ") || auth.size() == 7 || (!m_tokens.empty() && !m_tokens.count(auth.substr(7)))) {
      message(res, 401, "Bad credentials");
      return true;
    }
    return req.path.find("/hooks") != std::string::npos && answer_scripted(res);
  }

  bool known(const std::string& target, httplib::Response& res) {
    if (m_targets.count(target)) return true;
    message(res, 404, "Not Found");
    return false;
  }

  Hook* find(const std::string& target, std::int64_t id, httplib::Response& res) {
    if (!known(target, res)) return nullptr;
    for (auto& h : m_hooks)
      if (h.target == target && h.id == id) return &h;
    message(res, 404, "Not Found");
    return nullptr;
  }

  nlohmann::json json_of(const Hook& h) const {
    nlohmann::json config = h.config;
    if (config.contains("secret")) config["secret"] = "********";  // GitHub never shows it again
    const std::string kind = h.target.starts_with("org:") ? "orgs/" : "repos/";
    return {{"type", h.target.starts_with("org:") ? "Organization" : "Repository"},
            {"id", h.id},
            {"name", "web"},
            {"active", h.active},
            {"events", h.events},
            {"config", config},
            {"url", base() + "/" + kind + h.target.substr(h.target.find(':') + 1) + "/hooks/" + std::to_string(h.id)},
            {"last_response", {{"code", nullptr}, {"status", "unused"}, {"message", nullptr}}}};
  }

  void list(const std::string& target, const httplib::Request& req, httplib::Response& res) {
    if (!known(target, res)) return;
    int per_page = req.has_param("per_page") ? std::stoi(req.get_param_value("per_page")) : 30;
    per_page = std::clamp(per_page, 1, std::min(100, static_cast<int>(page_size())));
    const int page = req.has_param("page") ? std::max(1, std::stoi(req.get_param_value("page"))) : 1;
    std::vector<const Hook*> mine;
    for (const auto& h : m_hooks)
      if (h.target == target) mine.push_back(&h);
    nlohmann::json out = nlohmann::json::array();
    const std::size_t from = static_cast<std::size_t>(page - 1) * per_page;
    for (std::size_t i = from; i < mine.size() && i < from + per_page; ++i) out.push_back(json_of(*mine[i]));
    if (from + per_page < mine.size())
      res.set_header("Link", "<" + base() + req.path + "?per_page=" + std::to_string(per_page) +
                                 "&page=" + std::to_string(page + 1) + ">; rel=\"next\"");
    reply(res, 200, out);
  }

  // The checks GitHub makes of a hook body; an empty string when it is acceptable.
  static std::string invalid(const nlohmann::json& body, bool create) {
    if (!body.is_object()) return "Problems parsing JSON";
    if (create && body.value("name", "") != "web") return "Invalid request. name must be web";
    if (body.contains("config")) {
      const auto& c = body["config"];
      if (!c.is_object() || !c.contains("url") || !c["url"].is_string()) return "Invalid request. config.url missing";
      if (c.contains("content_type") && c["content_type"] != "json" && c["content_type"] != "form")
        return "Invalid request. content_type";
    } else if (create) {
      return "Invalid request. config missing";
    }
    if (body.contains("events") && (!body["events"].is_array() || body["events"].empty()))
      return "Invalid request. events";
    return {};
  }

  void create(const std::string& target, const httplib::Request& req, httplib::Response& res) {
    if (!known(target, res)) return;
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (const auto why = invalid(body, true); !why.empty()) return message(res, 422, why);
    const std::string url = body["config"]["url"];
    for (const auto& h : m_hooks)
      if (h.target == target && h.config.value("url", "") == url)
        return reply(res, 422,
                     {{"message", "Validation Failed"},
                      {"errors",
                       {{{"resource", "Hook"},
                         {"code", "custom"},
                         {"message",
                          "Hook already exists on this "
                          "repository"}}}}});
    Hook h{m_next_id++, target, body["config"], body.value("events", std::vector<std::string>{"push"}),
           body.value("active", true)};
    m_hooks.push_back(h);
    reply(res, 201, json_of(h));
  }

  void update(Hook& h, const httplib::Request& req, httplib::Response& res) {
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (const auto why = invalid(body, false); !why.empty()) return message(res, 422, why);
    if (body.contains("config"))
      for (const auto& [k, v] : body["config"].items()) h.config[k] = v;
    if (body.contains("events")) h.events = body["events"].get<std::vector<std::string>>();
    if (body.contains("active")) h.active = body["active"].get<bool>();
    reply(res, 200, json_of(h));
  }

  const std::set<std::string> m_tokens;
  const std::string m_login;
  std::set<std::string> m_targets;
  std::vector<Hook> m_hooks;
  std::int64_t m_next_id = 1000;
};

}  // namespace alumia::test
