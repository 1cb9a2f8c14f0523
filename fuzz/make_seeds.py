#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/<name> (fuzz/README.md).

Each verifier's seeds are the published and regression vectors its unit test checks
(tests/unit/test_webhook_<provider>.cpp, literal signatures: vector-*), and requests the harness signs
itself ("@sign", fuzz/fuzz_verifier.cpp: sign-*) so that the fuzzer starts behind the signature check.
The other targets get a few inputs of each shape they parse. Run it after changing a seed; the files are
small on purpose (libFuzzer grows its own working corpus in build-fuzz/corpus/, which is not committed).
"""
import json
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def req(method, target, headers, body=""):
    lines = [f"{method} {target}"] + [f"{k}: {v}" for k, v in headers] + ["", body]
    return "\n".join(lines)


SLACK_BODY = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
              "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
              "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
              "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
STRIPE_FIXTURE = json.dumps({
    "id": "evt_123", "object": "event", "account": "acct_123", "api_version": "2017-05-25", "created": 1533204620,
    "data": {"object": {"id": "cus_123", "object": "customer", "created": 123456789, "email": "test@stripe.com",
                        "livemode": False, "metadata": {}}},
    "livemode": False, "pending_webhooks": 1,
    "request": {"id": "req_123", "idempotency_key": "idempotency-key-123"}, "type": "customer.created"},
    indent=2) + "\n"
WHATSAPP_BODY = ('{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":'
                 '{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":'
                 '"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":'
                 '[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":'
                 '"this is a text message"}}]}}]}]}')
LINEAR_BODY = ('{"action":"create","type":"Issue","data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","title":"Test"},'
               '"url":"https://linear.app/x/issue/X-1","organizationId":"org_1","webhookTimestamp":1700000000000,'
               '"webhookId":"f4b1b6f0-5c1e-4f0b-9b2f-3a7e0c9d8e11"}')
DISCORD_PING = '{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}'
TWILIO_FORM = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
GMAIL_BODY = ('{"message":{"attributes":{"key":"value"},"data":"eyJlbWFpbEFkZHJlc3MiOiAidXNlckBleGFtcGxlLmNvbSIsICJo'
              'aXN0b3J5SWQiOiAiMTIzNDU2Nzg5MCJ9","messageId":"2070443601311540","message_id":"2070443601311540",'
              '"publishTime":"2021-02-26T19:13:55.749Z","publish_time":"2021-02-26T19:13:55.749Z"},"subscription":'
              '"projects/myproject/subscriptions/mysubscription","deliveryAttempt":5}')
GMAIL_CLAIMS = json.dumps({"aud": "https://example.com/push", "azp": "113774264463038321964",
                           "email": "push@fuzz.iam.gserviceaccount.com", "email_verified": True, "exp": 1700003600,
                           "iat": 1700000000, "iss": "https://accounts.google.com", "sub": "113774264463038321964"},
                          separators=(",", ":"))
JSON = ("content-type", "application/json")

SEEDS = {
    "fuzz_verify_github": {
        "vector-docs": req("POST", "/hook", [("x-github-event", "push"),
                                             ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                                             ("x-hub-signature-256",
                                              "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")],
                           "Hello, World!"),
        "vector-octokit": req("POST", "/hook", [("x-github-event", "push"), ("x-github-delivery", "d1"),
                                                ("x-hub-signature-256",
                                                 "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3")],
                              '{"foo":"bar"}'),
        "sign-ping": req("POST", "/hook", [("x-github-event", "ping"), ("x-github-delivery", "d2"),
                                           ("x-hub-signature-256", "@sign"), JSON],
                         '{"zen":"Keep it logically awesome.","hook_id":1}'),
        "sign-push": req("POST", "/hook", [("x-github-event", "push"), ("x-github-delivery", "d3"),
                                           ("x-hub-signature-256", "@sign"), JSON],
                         '{"ref":"refs/heads/main","commits":[{"id":"abc"}]}'),
    },
    "fuzz_verify_slack": {
        "vector-docs": req("POST", "/hook", [("content-type", "application/x-www-form-urlencoded"),
                                             ("x-slack-request-timestamp", "1531420618"), ("x-fuzz-now", "1531420618"),
                                             ("x-slack-signature",
                                              "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")],
                           SLACK_BODY),
        "sign-url-verification": req("POST", "/hook", [JSON, ("x-slack-request-timestamp", "1700000000"),
                                                       ("x-slack-signature", "@sign")],
                                     '{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",'
                                     '"type":"url_verification"}'),
        "sign-event": req("POST", "/hook", [JSON, ("x-slack-request-timestamp", "1700000000"),
                                            ("x-slack-signature", "@sign")],
                          '{"type":"event_callback","api_app_id":"A1","team_id":"T1","event_id":"Ev1",'
                          '"event":{"type":"message"}}'),
        "sign-interactivity": req("POST", "/hook", [("content-type", "application/x-www-form-urlencoded"),
                                                    ("x-slack-request-timestamp", "1700000000"),
                                                    ("x-slack-signature", "@sign")],
                                  "payload=%7B%22type%22%3A%22block_actions%22%2C%22team%22%3A%7B%22id%22%3A%22T1%22"
                                  "%7D%2C%22trigger_id%22%3A%221.2.3%22%7D"),
    },
    "fuzz_verify_discord": {
        "vector-ping": req("POST", "/interactions", [JSON, ("x-signature-timestamp", "1700000000"),
                                                     ("x-signature-ed25519",
                                                      "f0bd878adcef1f6d475c9644421905bd02b5de38e0d3ecfc6f58a711962c69cc"
                                                      "c8dd7c9db312f9bdf08b1e1b8182e27a844da728c5e0dbb5507bf9931c1ed80b")],
                           DISCORD_PING),
        "sign-command": req("POST", "/interactions", [JSON, ("x-signature-timestamp", "1700000000"),
                                                      ("x-signature-ed25519", "@sign")],
                            '{"id":"1","token":"tok","type":2,"data":{"name":"hi"}}'),
        "sign-event": req("POST", "/events", [JSON, ("x-signature-timestamp", "1700000000"),
                                              ("x-signature-ed25519", "@sign")],
                          '{"version":1,"application_id":"9","type":1,"event":{"type":"APPLICATION_AUTHORIZED",'
                          '"timestamp":"2024-10-18T14:42:53.064834","data":{}}}'),
    },
    "fuzz_verify_whatsapp": {
        "vector-regression": req("POST", "/hook", [JSON, ("x-hub-signature-256",
                                                          "sha256=f8586d9ffbea92dce2f45cbdfaad128ad16b57260fa5cbff43d7ba5fd27c74a7")],
                                 WHATSAPP_BODY),
        "vector-handshake": req("GET", "/hook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
                                []),
        "sign-statuses": req("POST", "/hook", [JSON, ("x-hub-signature-256", "@sign")],
                             '{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages",'
                             '"value":{"statuses":[{"id":"wamid.A","status":"delivered"},{"id":"wamid.B","status":"read"}]}}]}]}'),
    },
    "fuzz_verify_twilio": {
        "vector-official": req("POST", "/myapp.php?foo=1&bar=2", [("host", "mycompany.com"),
                                                                  ("content-type", "application/x-www-form-urlencoded"),
                                                                  ("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
                               TWILIO_FORM),
        "vector-json": req("POST", "/myapp.php?foo=1&bar=2&bodySHA256="
                                   "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
                           [("host", "mycompany.com"), JSON, ("x-twilio-signature", "a9nBmqA0ju/hNViExpshrM61xv4=")],
                           '{"property": "value", "boolean": true}'),
        "sign-message": req("POST", "/sms", [("content-type", "application/x-www-form-urlencoded"),
                                             ("x-twilio-signature", "@sign")],
                            "AccountSid=AC1&MessageSid=SM1&MessageStatus=delivered&Body=hi"),
        "sign-shared-key": req("POST", "/voice", [("content-type", "application/x-www-form-urlencoded"),
                                                  ("x-twilio-webhooks-signature-settings",
                                                   "key=fuzz-key-a,algorithm=HMAC_SHA256"),
                                                  ("x-twilio-signature", "@sign")],
                               "AccountSid=AC1&CallSid=CA1&CallStatus=ringing&SequenceNumber=0"),
        "sign-get": req("GET", "/status?AccountSid=AC1&CallSid=CA2", [("x-twilio-signature", "@sign")]),
    },
    "fuzz_verify_gmail": {
        "sign-jwt": req("POST", "/push", [JSON, ("authorization", "Bearer @sign"), ("x-fuzz-claims", GMAIL_CLAIMS)],
                        GMAIL_BODY),
        "sign-legacy": req("POST", "/push?token=@sign", [JSON, ("x-fuzz-mode", "legacy")], GMAIL_BODY),
        "sign-both": req("POST", "/push?token=@sign", [JSON, ("x-fuzz-mode", "both"), ("authorization", "Bearer @sign"),
                                                       ("x-fuzz-claims", GMAIL_CLAIMS)], GMAIL_BODY),
        "sign-jwks": req("POST", "/push", [JSON, ("authorization", "Bearer @sign"), ("x-fuzz-claims", GMAIL_CLAIMS),
                                           ("x-fuzz-jwks", '{"keys":[{"kty":"RSA","kid":"fuzz-kid","n":"AQAB","e":"AQAB"}]}')],
                         GMAIL_BODY),
    },
    "fuzz_verify_linear": {
        "vector-regression": req("POST", "/hook", [JSON, ("linear-signature",
                                                          "3ee6dfa4cedb58be034fc28d06ad181e5d7da193611cdc4dd7c0cac5b8519464"),
                                                   ("linear-event", "Issue"), ("linear-delivery", "0f3a2d8e-delivery")],
                                 LINEAR_BODY),
        "sign-no-delivery": req("POST", "/hook", [JSON, ("linear-signature", "@sign"), ("linear-event", "Issue")],
                                LINEAR_BODY.replace('"create"', '"update"')),
    },
    "fuzz_verify_stripe": {
        "vector-dotnet": req("POST", "/hook", [("content-type", "application/json; charset=utf-8"),
                                               ("x-fuzz-now", "1533204620"),
                                               ("stripe-signature", "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875"
                                                "572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a"
                                                "612ab9a025a9e4ee7eef")], STRIPE_FIXTURE),
        "vector-regression": req("POST", "/hook", [JSON, ("stripe-signature", "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5"
                                                         "f9c7ac25abca5382460e0d988c2b2a5b71b990")],
                                 '{"id":"evt_test_webhook","object":"event"}'),
        "sign-event": req("POST", "/hook", [JSON, ("stripe-signature", "@sign")],
                          '{"id":"evt_1","object":"event","account":"acct_1","type":"invoice.paid"}'),
    },
    "fuzz_verify_telegram": {
        "vector-message": req("POST", "/hook", [("x-telegram-bot-api-secret-token", "abc-DEF_123"), JSON],
                              '{"update_id":10000,"message":{"text":"hi"}}'),
        "sign-callback": req("POST", "/hook", [("x-telegram-bot-api-secret-token", "@sign"), JSON],
                             '{"update_id":10001,"callback_query":{"id":"1","data":"x"}}'),
    },
    "fuzz_json_body": {
        "api-key": '{"name":"ci","scopes":["connections","webhooks"]}',
        "connection": '{"connectorSlug":"github","label":"work"}',
        "credentials": '{"values":{"apiKey":"sk-test","region":"eu"}}',
        "oauth-client": '{"clientId":"abc","clientSecret":"def"}',
        "setup": '{"baseUrl":"https://hooks.example.com","remove":false,"rotateSecret":true,"events":["push"],"repo":"o/r"}',
        "deep": "[" * 64 + "]" * 64,
        "numbers": '{"name":1e999,"scopes":[-0,18446744073709551616]}',
    },
    "fuzz_form": {
        "slack": SLACK_BODY,
        "twilio": TWILIO_FORM,
        "edges": "a=&=b&&c&d=%zz&e=%4&f=+%2B+&g=%00%ff",
    },
    "fuzz_base_url": {
        "plain": "https://hooks.example.com",
        "path-port": "https://hooks.example.com:8443/alumia/in",
        "idn": "https://b\u00fccher.example/x",
        "ipv6": "https://[2001:db8::1]:443/",
        "ipv4-hex": "https://0x7f.1/",
        "userinfo": "https://user:secret@hooks.example.com/",
        "query": "https://hooks.example.com/?",
        "http": "http://127.0.0.1:7465",
    },
    "fuzz_token_response": {
        "json-ok": "200 1\napplication/json\n-\n"
                   '{"access_token":"gho_x","token_type":"bearer","scope":"repo,gist","refresh_token":"r",'
                   '"expires_in":28800,"team":{"id":"T1"},"incoming_webhook":{"url":"https://hooks.slack.com/x"}}',
        "form-ok": "200 9\napplication/x-www-form-urlencoded\n-\n"
                   "access_token=gho_x&scope=repo%2Cgist&token_type=bearer",
        "slack": "200 7\napplication/json\n-\n"
                 '{"ok":true,"access_token":"xoxb-1","token_type":"bot","scope":"chat:write",'
                 '"authed_user":{"id":"U1","access_token":"xoxp-1","scope":"search:read","token_type":"user"}}',
        "slack-error": "200 7\napplication/json\n-\n" '{"ok":false,"error":"invalid_code"}',
        "grant": "400 1\napplication/json\n-\n"
                 '{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or '
                 'refresh token has expired.\\r\\nTrace ID: 0123456789abcdef0123456789abcdef01234567","error_codes":[70008]}',
        "problem": "429 0\napplication/problem+json\n120\n" '{"type":"about:blank","title":"slow down","detail":"x"}',
        "linear-scopes": "200 0\napplication/json\n-\n" '{"access_token":"lin_x","scope":["read","write"],"expires_in":1e300}',
    },
}


def intake_record(fields, received_at, aliases, items):
    import struct
    out = b"\x01"
    for f in fields:
        b = f.encode()
        out += struct.pack("<I", len(b)) + b
    out += struct.pack("<q", received_at)
    for lst in (aliases, items):
        out += struct.pack("<I", len(lst))
        for s in lst:
            b = s.encode()
            out += struct.pack("<I", len(b)) + b
    return out


BINARY = {
    "fuzz_intake_record": {
        "github": intake_record(["ep_1", "usr_1", "github", "github:d1", "push", "content-type: application/json\n",
                                 '{"a":1}', "evt_1", "job_1"], 1700000000000, [], []),
        "whatsapp-items": intake_record(["ep_2", "usr_1", "whatsapp", "whatsapp:msg:A", "messages", "", "{}", "evt_2",
                                         "job_2"], 1700000000001, ["whatsapp:alias"], ["whatsapp:msg:A", "whatsapp:msg:B"]),
    },
    "fuzz_catalog": {
        # first byte even: the document is the whole built-in catalog; odd: a connectors.d override
        "override-one": b"\x01" + json.dumps({"slug": "github", "displayName": "GitHub (fuzz)"}).encode(),
        "override-list": b"\x01" + json.dumps({"connectors": [{"slug": "github", "replace": True}]}).encode(),
        "override-null": b"\x01" + json.dumps([{"slug": "slack", "oauth": None}]).encode(),
    },
}


def main():
    catalog = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "catalog", "connectors.json")
    with open(catalog, "rb") as f:
        BINARY["fuzz_catalog"]["builtin"] = b"\x00" + f.read()
    for target in list(SEEDS) + list(BINARY):
        shutil.rmtree(os.path.join(ROOT, target), ignore_errors=True)
    for target, seeds in SEEDS.items():
        os.makedirs(os.path.join(ROOT, target), exist_ok=True)
        for name, text in seeds.items():
            with open(os.path.join(ROOT, target, name), "w", encoding="utf-8", newline="") as f:
                f.write(text)
    for target, seeds in BINARY.items():
        os.makedirs(os.path.join(ROOT, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(ROOT, target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
