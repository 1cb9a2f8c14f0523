#pragma once
// A local stand-in for the Stripe API (the daemon's ALUMIA_STRIPE_API_BASE) on 127.0.0.1:0: GET
// /v1/account for the live check, and the webhook endpoints (create, retrieve, update, list with
// starting_after, delete) kept like Stripe keeps them, each with the whsec_ signing secret that only
// the answer creating it shows. Bodies are form-encoded and parsed like Stripe parses them
// (`enabled_events[]` or `enabled_events[0]`, `metadata[key]`); an unknown parameter is a 400.
// Every call is recorded (method, path, query, headers, body). Keys it does not know get 401; keys
// in `restricted` (a restricted key without Webhook Endpoints: write) get 403 on the endpoints. An
// error can be scripted (script()) for the next calls to a webhook_endpoints route.
#include "fake_call.hpp"

#include <alumia/net/http.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace alumia::test {

class FakeStripe : public FakeApi {
 public:
  struct Endpoint {
    std::string id;
    std::string url;
    std::vector<std::string> enabled_events;
    std::string description;
    nlohmann::json metadata = nlohmann::json::object();
    bool disabled = false;
    std::string secret;  // whsec_...
  };
  explicit FakeStripe(std::set<std::string> keys, std::set<std::string> restricted = {})
      : FakeApi("application/json"), m_keys(std::move(keys)), m_restricted(std::move(restricted)) {
    server().Get("/v1/account", route([this](const httplib::Request&, httplib::Response& res) {
                   reply(res, 200,
                         {{"id", "acct_1Fake"},
                          {"object", "account"},
                          {"email", "ops@example.com"},
                          {"settings", {{"dashboard", {{"display_name", "Fake Shop"}}}}}});
                 }));
    server().Post("/v1/webhook_endpoints", route([this](const httplib::Request& req, httplib::Response& res) {
                    if (!writable(req, res)) return;
                    Endpoint e;
                    e.id = "we_" + token(24);
                    e.secret = "whsec_" + token(32);
                    if (!apply(e, req, res, true)) return;
                    m_endpoints.insert(m_endpoints.begin(), e);  // newest first, like Stripe's lists
                    nlohmann::json out = json_of(e);
                    out["secret"] = e.secret;
                    reply(res, 200, out);
                  }));
    server().Get("/v1/webhook_endpoints", route([this](const httplib::Request& req, httplib::Response& res) {
                   if (!writable(req, res)) return;
                   const int limit = req.has_param("limit") ? std::stoi(req.get_param_value("limit")) : 10;
                   if (limit < 1 || limit > 100)
                     return error(res, 400, "invalid_request_error", "Invalid limit", "limit");
                   std::size_t from = 0;
                   if (req.has_param("starting_after")) {
                     const auto after = req.get_param_value("starting_after");
                     const auto it = std::find_if(m_endpoints.begin(), m_endpoints.end(),
                                                  [&](const Endpoint& e) { return e.id == after; });
                     if (it == m_endpoints.end()) return missing(res, after);
                     from = static_cast<std::size_t>(it - m_endpoints.begin()) + 1;
                   }
                   const std::size_t page = std::min<std::size_t>(limit, page_size());
                   nlohmann::json data = nlohmann::json::array();
                   for (std::size_t i = from; i < m_endpoints.size() && i < from + page; ++i)
                     data.push_back(json_of(m_endpoints[i]));
                   reply(res, 200,
                         {{"object", "list"},
                          {"url", "/v1/webhook_endpoints"},
                          {"has_more", from + page < m_endpoints.size()},
                          {"data", data}});
                 }));
    const std::string one = R"(/v1/webhook_endpoints/([^/]+))";
    server().Get(one, route([this](const httplib::Request& req, httplib::Response& res) {
                   if (!writable(req, res)) return;
                   if (Endpoint* e = find(req.matches[1], res)) reply(res, 200, json_of(*e));
                 }));
    server().Post(one, route([this](const httplib::Request& req, httplib::Response& res) {
                    if (!writable(req, res)) return;
                    Endpoint* e = find(req.matches[1], res);
                    if (!e) return;
                    Endpoint updated = *e;
                    if (!apply(updated, req, res, false)) return;
                    *e = updated;
                    reply(res, 200, json_of(*e));
                  }));
    server().Delete(one, route([this](const httplib::Request& req, httplib::Response& res) {
                      if (!writable(req, res)) return;
                      const std::string id = req.matches[1];
                      if (!find(id, res)) return;
                      std::erase_if(m_endpoints, [&](const Endpoint& e) { return e.id == id; });
                      reply(res, 200, {{"id", id}, {"object", "webhook_endpoint"}, {"deleted", true}});
                    }));
    start();
  }
  ~FakeStripe() { stop(); }

  // An endpoint made elsewhere (the dashboard, another tool), with its own secret.
  std::string add_endpoint(const std::string& url) {
    std::lock_guard lock(m_mutex);
    Endpoint e{"we_" + token(24), url, {"*"}, "", nlohmann::json::object(), false, "whsec_" + token(32)};
    m_endpoints.insert(m_endpoints.begin(), e);
    return e.id;
  }
  std::vector<Endpoint> endpoints() {
    std::lock_guard lock(m_mutex);
    return m_endpoints;
  }

 private:
  // A route's handler behind the recording, authentication and scripted errors.
  template <class F>
  httplib::Server::Handler route(F handler) {
    return recorded([this, handler](const httplib::Request& req, httplib::Response& res) {
      const std::string auth = req.get_header_value("Authorization");
      if (!auth.starts_with("Bearer ") || !m_keys.count(auth.substr(7)))
        return error(res, 401, "invalid_request_error", "Invalid API Key provided: " + masked(auth), "");
      if (req.path.starts_with("/v1/webhook_endpoints") && answer_scripted(res)) return;
      handler(req, res);
    });
  }

  // Stripe shows a refused key masked: its prefix and last four characters.
  static std::string masked(const std::string& auth) {
    const std::string key = auth.starts_with("Bearer ") ? auth.substr(7) : auth;
    if (key.size() < 12) return "***";
    return key.substr(0, 8) + std::string(key.size() - 12, '*') + key.substr(key.size() - 4);
  }

  bool writable(const httplib::Request& req, httplib::Response& res) {
    const std::string key = req.get_header_value("Authorization").substr(7);
    if (!m_restricted.count(key)) return true;
    error(res, 403, "invalid_request_error",
          "The provided key '" + masked(key) +
              "' does not have the required permissions for this endpoint on account 'acct_1Fake'. Having the "
              "'rak_webhook_write' permission would allow this request to continue.",
          "");
    return false;
  }

  std::string token(std::size_t n) {
    static constexpr char k_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::uniform_int_distribution<std::size_t> pick(0, sizeof(k_alnum) - 2);
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += k_alnum[pick(m_rng)];
    return out;
  }

  void error(httplib::Response& res, int status, const std::string& type, const std::string& message,
             const std::string& param) {
    nlohmann::json e = {{"type", type}, {"message", message}};
    if (!param.empty()) e["param"] = param;
    if (status == 404) e["code"] = "resource_missing";
    reply(res, status, {{"error", e}});
  }
  void missing(httplib::Response& res, const std::string& id) {
    error(res, 404, "invalid_request_error", "No such webhook endpoint: '" + id + "'", "id");
  }

  Endpoint* find(const std::string& id, httplib::Response& res) {
    for (auto& e : m_endpoints)
      if (e.id == id) return &e;
    missing(res, id);
    return nullptr;
  }

  static nlohmann::json json_of(const Endpoint& e) {
    return {{"id", e.id},
            {"object", "webhook_endpoint"},
            {"url", e.url},
            {"enabled_events", e.enabled_events},
            {"description", e.description.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.description)},
            {"metadata", e.metadata},
            {"status", e.disabled ? "disabled" : "enabled"},
            {"livemode", false}};
  }

  // The form body applied to `e` as Stripe would; false (and a 400 answered) when Stripe would refuse it.
  bool apply(Endpoint& e, const httplib::Request& req, httplib::Response& res, bool create) {
    if (req.get_header_value("Content-Type").find("application/x-www-form-urlencoded") != 0 && !req.body.empty()) {
      error(res, 400, "invalid_request_error", "Invalid request: the body must be form-encoded", "");
      return false;
    }
    const auto form = alumia::http::form_decode(req.body);
    std::vector<std::string> events;
    bool events_given = false;
    for (const auto& [k, v] : form) {
      if (k == "url") {
        if (!(v.starts_with("https://") || v.starts_with("http://"))) {
          error(res, 400, "invalid_request_error", "Invalid URL: " + v, "url");
          return false;
        }
        e.url = v;
      } else if (k == "enabled_events[]" || (k.starts_with("enabled_events[") && k.ends_with("]"))) {
        events_given = true;
        if (v != "*" && v.find('.') == std::string::npos) {
          error(res, 400, "invalid_request_error", "Invalid enabled_events[]: unknown event type " + v,
                "enabled_events");
          return false;
        }
        events.push_back(v);
      } else if (k == "description") {
        e.description = v;
      } else if (k.starts_with("metadata[") && k.ends_with("]")) {
        e.metadata[k.substr(9, k.size() - 10)] = v;
      } else if (k == "disabled" && !create) {
        if (v != "true" && v != "false") {
          error(res, 400, "invalid_request_error", "Invalid boolean: " + v, "disabled");
          return false;
        }
        e.disabled = v == "true";
      } else {
        error(res, 400, "invalid_request_error", "Received unknown parameter: " + k, k);
        return false;
      }
    }
    if (events_given) e.enabled_events = events;
    if (create && e.url.empty()) {
      error(res, 400, "invalid_request_error", "Missing required param: url.", "url");
      return false;
    }
    if (create && e.enabled_events.empty()) {
      error(res, 400, "invalid_request_error", "Missing required param: enabled_events.", "enabled_events");
      return false;
    }
    return true;
  }

  const std::set<std::string> m_keys;
  const std::set<std::string> m_restricted;
  std::mt19937_64 m_rng{std::random_device{}()};
  std::vector<Endpoint> m_endpoints;
};

}  // namespace alumia::test
