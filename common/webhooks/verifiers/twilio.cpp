// Twilio (PROVIDERS §5): X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + sorted name+value
// POST params)), or HMAC-SHA256 with a SharedKey when X-Twilio-Webhooks-Signature-Settings names
// one. JSON bodies: the URL carries bodySHA256 and is signed alone. Port variants are accepted.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/net/url.hpp>

#include <algorithm>

namespace alumia::webhooks::detail {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// The URL the provider called: the configured public URL, else X-Forwarded-Proto + Host + target.
Result<std::string> called_url(const http::Request& req, const VerifyContext& ctx) {
  if (!ctx.public_url.empty()) return ctx.public_url;
  auto host = single_header(req, "Host");
  if (!host)
    return unauthorized("cannot rebuild the URL Twilio signed: no public base URL and " + host.error().message);
  if (http::header_count(req.headers, "X-Forwarded-Proto") > 1)
    return unauthorized("X-Forwarded-Proto header sent more than once");
  const std::string proto = http::to_lower(req.header("X-Forwarded-Proto").value_or("https"));
  return proto + "://" + *host + req.target;
}

// The two forms Twilio's signer may have used (PROVIDERS §5 port variants): without any port, and
// with the explicit or default port. The text is kept as received apart from the port and the
// fragment, which is never signed.
Result<std::vector<std::string>> url_variants(std::string_view text) {
  text = text.substr(0, text.find('#'));
  auto parsed = url::parse(text);
  if (!parsed) return unauthorized("the URL Twilio signed is not a valid URL: " + parsed.error().message);
  if (parsed->port == 0) return unauthorized("the URL Twilio signed has no known port for scheme " + parsed->scheme);
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return unauthorized("the URL Twilio signed has no authority");
  const std::size_t auth_begin = scheme_end + 3;
  std::size_t auth_end = text.find_first_of("/?", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = text.size();
  const std::string_view authority = text.substr(auth_begin, auth_end - auth_begin);
  const auto at = authority.rfind('@');
  const std::size_t host_begin = at == std::string_view::npos ? 0 : at + 1;
  std::size_t host_end = authority.size();
  if (host_begin < authority.size() && authority[host_begin] == '[') {
    const auto close = authority.find(']', host_begin);
    if (close != std::string_view::npos) host_end = close + 1;
  } else if (const auto colon = authority.find(':', host_begin); colon != std::string_view::npos) {
    host_end = colon;
  }
  const std::string head(text.substr(0, auth_begin + host_end));
  const std::string tail(text.substr(auth_end));
  std::vector<std::string> out{head + tail, head + ":" + std::to_string(parsed->port) + tail};
  return out;
}

std::string joined(const Params& sorted) {
  std::string out;
  for (const auto& [name, value] : sorted) out += name + value;
  return out;
}

struct SigningKeys {
  std::vector<std::string> keys;
  bool sha256 = false;
};

Result<SigningKeys> signing_keys(const http::Request& req, const EndpointConfig& endpoint) {
  constexpr std::string_view k_settings = "X-Twilio-Webhooks-Signature-Settings";
  const std::size_t count = http::header_count(req.headers, k_settings);
  if (count == 0) return SigningKeys{endpoint.secrets, false};
  if (count > 1) return unauthorized(std::string(k_settings) + " header sent more than once");
  std::string key_id;
  std::string algorithm;
  // "key=<id>,algorithm=HMAC_SHA256": comma-separated, not a form.
  const std::string owned = *http::header_value(req.headers, k_settings);
  std::string_view rest = owned;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    if (item.substr(0, eq) == "key") key_id = std::string(item.substr(eq + 1));
    else if (item.substr(0, eq) == "algorithm") algorithm = std::string(item.substr(eq + 1));
  }
  if (algorithm != "HMAC_SHA256") return unauthorized("unsupported Twilio signature algorithm '" + algorithm + "'");
  auto it = endpoint.shared_keys.find(key_id);
  if (key_id.empty() || it == endpoint.shared_keys.end() || it->second.empty())
    return unauthorized("unknown Twilio SharedKey id '" + key_id + "'");
  return SigningKeys{{it->second}, true};
}

std::optional<std::string> param(const Params& params, std::string_view name) {
  for (const auto& [key, value] : params)
    if (key == name && !value.empty()) return value;
  return std::nullopt;
}

Result<Verdict> form_event(const Params& params, std::string_view signed_text) {
  const auto account = param(params, "AccountSid");
  if (!account) return bad_request("twilio request has no AccountSid");
  const std::string prefix = "twilio:" + *account + ":";
  if (const auto call = param(params, "CallSid")) {
    std::string key = prefix + *call;
    if (const auto status = param(params, "CallStatus")) key += ":" + *status;
    if (const auto seq = param(params, "SequenceNumber")) key += ":" + *seq;
    return event_verdict(key, "call");
  }
  auto message = param(params, "MessageSid");
  if (!message) message = param(params, "SmsSid");
  if (message) {
    if (const auto status = param(params, "MessageStatus"))
      return event_verdict(prefix + *message + ":" + *status, "message.status");
    return event_verdict(prefix + *message, "message");
  }
  // Other products carry other ids; the signed text is unique per request (our convention).
  return event_verdict(prefix + "sha256:" + encoding::hex_encode(crypto::sha256(signed_text)), "twilio");
}

Result<Verdict> json_event(std::string_view body) {
  auto doc = TRY(parse_json(body, "twilio"));
  std::vector<std::string> keys;
  std::string type;
  auto add = [&](const nlohmann::json& item) {
    if (auto id = string_field(item, "id")) keys.push_back("twilio:event:" + *id);
    if (type.empty()) type = string_field(item, "type").value_or("");
  };
  if (doc.is_array()) {
    for (const auto& item : doc) add(item);
  } else {
    add(doc);
  }
  if (keys.empty()) keys.push_back("twilio:body:" + encoding::hex_encode(crypto::sha256(body)));
  Verdict v = event_verdict(keys.front(), type.empty() ? "twilio" : type);
  v.item_keys = std::move(keys);
  return v;
}

class TwilioVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "twilio"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the account's primary Auth Token");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    if (req.method != "POST" && req.method != "GET")
      return fail(ErrorCode::method_not_allowed, "twilio webhooks use POST or GET, not " + req.method);
    auto signature = TRY(single_header(req, "X-Twilio-Signature"));
    auto keys = TRY(signing_keys(req, ctx.endpoint));
    auto url = TRY(called_url(req, ctx));
    auto variants = TRY(url_variants(url));

    // bodySHA256 lives in the signed URL's query (JSON bodies).
    const auto parsed = url::parse(std::string_view(url).substr(0, url.find('#')));
    Params query = parsed ? http::form_decode(parsed->query) : Params{};
    std::vector<std::string> body_hashes;
    for (const auto& [name, value] : query)
      if (name == "bodySHA256") body_hashes.push_back(value);
    if (body_hashes.size() > 1) return unauthorized("bodySHA256 appears more than once in the URL");
    const bool json_variant = !body_hashes.empty();

    Params params;
    std::vector<std::string> param_strings;
    if (json_variant) {
      if (!crypto::equal_ct(encoding::hex_encode(crypto::sha256(req.body)), http::to_lower(body_hashes.front())))
        return unauthorized("bodySHA256 does not match the request body");
      param_strings.emplace_back();
    } else if (req.method == "POST") {
      params = http::form_decode(req.body);
      Params sorted = params;
      std::sort(sorted.begin(), sorted.end());  // byte order of names, then of values
      param_strings.push_back(joined(sorted));
      // twilio-node collapses identical repeated name/value pairs; accept that signer too.
      Params unique = sorted;
      unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
      if (unique.size() != sorted.size()) param_strings.push_back(joined(unique));
    } else {
      param_strings.emplace_back();  // GET: the URL only
    }

    bool matched = false;
    std::string signed_text;
    for (const auto& u : variants)
      for (const auto& p : param_strings)
        for (const auto& key : keys.keys) {
          if (key.empty()) continue;
          const std::string text = u + p;
          const std::string mac = keys.sha256 ? crypto::hmac_sha256(key, text) : crypto::hmac_sha1(key, text);
          if (crypto::equal_ct(encoding::base64_encode(mac), signature)) {
            matched = true;
            signed_text = text;
          }
        }
    if (!matched)
      return unauthorized("X-Twilio-Signature does not match (check that the public base URL is the URL Twilio calls)");

    Result<Verdict> verdict = json_variant ? json_event(req.body)
                              : req.method == "GET"
                                  ? form_event(Params(req.query.begin(), req.query.end()), signed_text)
                                  : form_event(params, signed_text);
    if (!verdict) return verdict;
    // Voice and messaging webhooks expect TwiML; status callbacks ignore the body.
    verdict->reply_body = "<Response></Response>";
    verdict->reply_content_type = "text/xml";
    verdict->exact_reply = true;
    return verdict;
  }
};

}  // namespace

const Verifier& twilio_verifier() {
  static const TwilioVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail
