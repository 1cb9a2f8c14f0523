// The public receiver (SPEC §7, PROVIDERS §0.6): body cap → endpoint → verifier → handshake or
// event → dedup and store. Anyone on the public listener can call it, so what it answers on a
// refusal is one fixed message per code, never the detail (a URL, a host, an upstream status,
// whether a kid exists). The detail goes to the endpoint's owner (lastError, on the control listener)
// and to the log, at a bounded rate because a stranger can cause refusals in a loop.
#include <alumia/base/strings.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace alumia {
namespace {

using nlohmann::json;

// A refusal's answer to the sender. The detailed reason never reaches it.
struct PublicRefusal {
  ErrorCode code;
  std::string_view message;
};
constexpr std::array<PublicRefusal, 6> k_public_refusals{{
    {ErrorCode::unauthorized, "signature verification failed"},
    {ErrorCode::not_found, "no such webhook endpoint"},
    {ErrorCode::bad_request, "malformed webhook delivery"},
    {ErrorCode::method_not_allowed, "method not allowed for this webhook endpoint"},
    {ErrorCode::payload_too_large, "request body too large"},
    {ErrorCode::too_many_requests, "too many deliveries to this webhook endpoint; retry after Retry-After seconds"},
}};

// receive_now(): bodies up to this size are verified and encoded on the listener's poll thread (a few
// microseconds for a provider's typical few KiB); larger ones go to a worker.
constexpr std::size_t k_receive_now_max_body = 64 * 1024;

// Everything else (the key server unreachable, the store failing, an internal error) is trouble on
// our side: 503 so the provider retries.
constexpr std::string_view k_unavailable = "webhook receiver temporarily unavailable; retry later";

// Log lines and lastError messages quote what the sender sent (a header value, an algorithm name):
// bounded, and printable ASCII only, so a log viewer's terminal never runs them.
constexpr std::size_t k_max_detail = 300;

std::string printable(std::string_view text) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    if (out.size() >= k_max_detail) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(k_hex[u >> 4]);
      out.push_back(k_hex[u & 0xf]);
    }
  }
  return out;
}

// Headers never kept with an event: credentials and signatures (SPEC §7 "minus secrets").
bool is_secret_header(std::string_view lower_name) {
  static constexpr std::string_view k_exact[] = {"authorization", "proxy-authorization", "cookie", "set-cookie"};
  for (auto n : k_exact)
    if (lower_name == n) return true;
  for (auto part : {"signature", "secret", "token", "api-key", "apikey"})
    if (lower_name.find(part) != std::string_view::npos) return true;
  return false;
}

// The headers kept with an event, as the JSON array of [name, value] pairs nlohmann would dump. Written
// directly while every byte is ASCII (every header of every provider we know): building a json tree per
// delivery only to dump and free it was ~10 % of the request thread's time. Anything else goes through
// nlohmann, which replaces invalid UTF-8. Header values are kept as received (`events show --json` is
// exact); the CLI escapes them for a terminal.
std::string stored_headers_json(const http::Headers& headers) {
  std::string out = "[";
  for (const auto& [name, value] : headers) {
    if (is_secret_header(name)) continue;
    if (out.size() > 1) out += ',';
    out += '[';
    const bool ascii = append_json_string_ascii(out, name) && (out += ',', append_json_string_ascii(out, value));
    if (!ascii) {
      json slow = json::array();
      for (const auto& [n, v] : headers)
        if (!is_secret_header(n)) slow.push_back(json::array({n, v}));
      return slow.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    out += ']';
  }
  out += ']';
  return out;
}

http::Response exact_reply(const webhooks::Verdict& v) {
  http::Response r;
  r.status = v.status;
  r.body = v.reply_body;
  r.content_type = v.reply_content_type;
  return r;
}

}  // namespace

Error WebhookService::public_refusal(const Error& detail) {
  for (const auto& r : k_public_refusals)
    if (r.code == detail.code)
      return Error{r.code, std::string(r.message),
                   r.code == ErrorCode::too_many_requests ? std::max(detail.retry_after_seconds, 1) : 0};
  return Error{ErrorCode::service_unavailable, std::string(k_unavailable), detail.retry_after_seconds};
}

void WebhookService::log_refusal(const std::string& line) {
  const int64_t now = m_d.clock.now_ms();
  int64_t dropped = 0;
  {
    std::lock_guard lock(m_refusal_log_mutex);
    if (now - m_refusal_log.window_start >= k_refusal_log_window_ms || now < m_refusal_log.window_start) {
      dropped = m_refusal_log.suppressed;
      m_refusal_log = {now, 0, 0};
    }
    if (m_refusal_log.lines >= k_refusal_log_lines) {
      ++m_refusal_log.suppressed;
      return;
    }
    ++m_refusal_log.lines;
  }
  if (dropped > 0) spdlog::info("webhook receiver: {} more refused deliveries were not logged", dropped);
  spdlog::info("webhook receiver: {}", line);
}

Error WebhookService::refuse(const std::string& provider, const std::string& endpoint_id, const Error& detail,
                             std::optional<EndpointCounter> counter, const std::string& client) {
  const std::string message = printable(detail.message);
  m_tally.add(endpoint_id, counter, EndpointError{std::string(detail.wire()), message, m_d.clock.now_ms()});
  log_refusal(provider + " " + endpoint_id + (client.empty() ? "" : " from " + printable(client)) + ": refused (" +
              std::string(detail.wire()) + "): " + message);
  return public_refusal(detail);
}

Result<AdmittedDelivery> WebhookService::admit_body(const std::string& provider, const std::string& id,
                                                    std::size_t content_length) {
  AdmittedDelivery admitted;
  if (is_uuid(id)) admitted.endpoint = m_d.endpoints.get(id);
  return admit(provider, id, content_length, std::move(admitted));
}

std::optional<Result<AdmittedDelivery>> WebhookService::admit_body_cached(const std::string& provider,
                                                                          const std::string& id,
                                                                          std::size_t content_length) {
  AdmittedDelivery admitted;
  if (is_uuid(id)) {
    auto cached = m_d.endpoints.cached(id);
    if (!cached) return std::nullopt;
    admitted.endpoint = std::move(*cached);
  }
  return admit(provider, id, content_length, std::move(admitted));
}

Result<AdmittedDelivery> WebhookService::admit(const std::string& provider, const std::string& id,
                                               std::size_t content_length, AdmittedDelivery admitted) {
  const CachedEndpoint* ep = admitted.endpoint ? admitted.endpoint->get() : nullptr;
  const bool known = ep && !ep->record.deleted_at && ep->record.status == EndpointStatus::active &&
                     ep->record.provider == parse_provider(provider);
  const int64_t cap = known ? ep->record.max_body_bytes : k_default_webhook_body_cap;
  if (static_cast<int64_t>(content_length) > cap) {
    const Error detail{ErrorCode::payload_too_large,
                       "body of " + std::to_string(content_length) + " bytes exceeds maxBodyBytes " +
                           std::to_string(cap) + " (raise it with `alumia-connect webhooks update " + id +
                           " --max-body-bytes N`)",
                       0};
    if (!known) return std::unexpected(public_refusal(detail));
    return std::unexpected(refuse(provider, id, detail, EndpointCounter::rejected));
  }
  // The rate limit, before anything that costs (reading the body, the verifier's crypto, a key fetch,
  // the store): in memory, per endpoint, so a flood here neither writes to disk nor holds up other
  // endpoints, and its bodies are never read (the listener closes after the 429).
  if (!known) return admitted;
  if (const int64_t wait_ms = ep->rate_limit.take(m_d.clock.now_ms()); wait_ms > 0) {
    const RateLimit limit = m_d.endpoints.rate_limit(ep->record);
    const Error detail{ErrorCode::too_many_requests,
                       "over the endpoint's rate limit of " + std::to_string(limit.per_second) + "/s (burst " +
                           std::to_string(limit.burst) + "); raise it with `alumia-connect webhooks update " + id +
                           " --rate-limit N --burst M`",
                       static_cast<int>((wait_ms + 999) / 1000)};
    return std::unexpected(refuse(provider, id, detail, EndpointCounter::rate_limited));
  }
  return admitted;
}

Result<Receipt> WebhookService::receive(http::Request& req, const AdmittedDelivery& admitted) {
  auto verified = verify_delivery(req, admitted, true);
  if (auto* settled = std::get_if<Result<Receipt>>(&*verified)) return std::move(*settled);
  auto& v = std::get<Verified>(*verified);
  auto outcome = m_d.hooks.ingest(std::move(v.in));
  return receipt_for(v, std::move(outcome));
}

bool WebhookService::receive_now(http::Request& req, const AdmittedDelivery& admitted,
                                 std::function<void(Result<Receipt>)> done) {
  // The poll thread serves every connection: a large body (an endpoint may allow up to 25 MiB) is hashed
  // and copied into its record on a worker, so that it never holds the others up for milliseconds.
  if (req.body.size() > k_receive_now_max_body) return false;
  auto verified = verify_delivery(req, admitted, false);
  if (!verified) return false;
  if (auto* settled = std::get_if<Result<Receipt>>(&*verified)) {
    done(std::move(*settled));
    return true;
  }
  auto v = std::make_shared<Verified>(std::move(std::get<Verified>(*verified)));
  // What the store takes is moved into it only when it takes the delivery.
  if (m_d.hooks.ingest_async(
          v->in, [this, v, done](Result<IngestOutcome> outcome) { done(receipt_for(*v, std::move(outcome))); }))
    return true;
  req.body = std::move(v->in.body);  // back as it was: receive() verifies it again
  return false;
}

std::optional<std::variant<Result<Receipt>, WebhookService::Verified>> WebhookService::verify_delivery(
    http::Request& req, const AdmittedDelivery& admitted, bool may_block) {
  using Answer = std::variant<Result<Receipt>, Verified>;
  const auto refused = [](Error e) { return Answer(Result<Receipt>(std::unexpected(std::move(e)))); };
  const std::string provider = req.params.count("provider") ? req.params.at("provider") : "";
  const std::string id = req.params.count("endpointId") ? req.params.at("endpointId") : "";
  // Unknown, disabled, deleted or another provider's endpoint: the same answer, and no owner to tell.
  // The body cap was admit_body()'s, on Content-Length, which is the body's size (chunked is refused).
  const Error not_found{ErrorCode::not_found, "", 0};
  if (!is_uuid(id)) return refused(public_refusal(not_found));
  const auto& got = admitted.endpoint;
  if (!got) {
    log_refusal("endpoint " + id + " could not be loaded: " + printable(got.error().message));
    return refused(public_refusal(got.error()));
  }
  const auto& ep = *got;
  const webhooks::Verifier* verifier = webhooks::find_verifier(provider);
  if (!ep || ep->record.deleted_at || ep->record.status != EndpointStatus::active ||
      ep->record.provider != parse_provider(provider) || !verifier)
    return refused(public_refusal(not_found));
  if (!may_block && verifier->may_block()) return std::nullopt;

  const int64_t now = m_d.clock.now_ms();
  // The rate limit was admit_body()'s, before the body was read.
  const bool in_grace = ep->record.previous_secret_expires_at && now < *ep->record.previous_secret_expires_at;
  webhooks::VerifyContext vctx{in_grace ? ep->during_grace : ep->current, now, &m_jwks, {}};
  // Twilio signs the URL it called: the receiveUrl, built on the base URL.
  if (provider == "twilio" && !m_d.webhook_base_url.empty()) vctx.public_url = receive_base() + req.target;
  auto verdict = verifier->verify(req, vctx);
  if (!verdict) {
    const bool auth_failure = verdict.error().code == ErrorCode::unauthorized;
    return refused(refuse(provider, id, verdict.error(),
                          auth_failure ? EndpointCounter::verification_failure : EndpointCounter::rejected,
                          req.remote_addr));
  }
  if (verdict->outcome != webhooks::Outcome::event)
    return Answer(Result<Receipt>(Receipt{exact_reply(*verdict), {}, false}));

  Verified v;
  v.provider = provider;
  IngestRequest& in = v.in;
  in.endpoint_id = id;
  v.endpoint_id = id;
  in.user_id = ep->record.user_id;
  in.provider = ep->record.provider;
  in.event_key = std::move(verdict->event_key);
  in.alias_keys = std::move(verdict->alias_keys);
  in.item_keys = std::move(verdict->item_keys);
  in.event_type = std::move(verdict->event_type);
  in.headers = stored_headers_json(req.headers);
  in.body = std::move(req.body);  // verified: the request is done with it
  in.received_at = now;
  in.event_id = m_d.random.uuid_v7(now);
  in.job_id = m_d.random.uuid_v7(now);
  // Wake the relay worker only when this job can go somewhere; jobs without a target wait in the
  // queue without costing the worker a look per delivery.
  v.wake_relay = ep->record.relay_to || !m_d.endpoints.default_relay_to().empty();
  if (verdict->exact_reply) v.exact_reply = exact_reply(*verdict);
  return Answer(std::move(v));
}

Result<Receipt> WebhookService::receipt_for(Verified& v, Result<IngestOutcome> outcome) {
  if (!outcome)  // 503: retried
    return std::unexpected(refuse(v.provider, v.endpoint_id, outcome.error(), std::nullopt));
  if (!outcome->duplicate && v.wake_relay) m_d.relay.jobs_due();
  if (v.exact_reply) return Receipt{std::move(*v.exact_reply), outcome->event_id, outcome->duplicate};
  return Receipt{std::nullopt, outcome->event_id, outcome->duplicate};
}

}  // namespace alumia
