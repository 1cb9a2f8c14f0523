#!/usr/bin/env python3
# bench/admin_latency.py URL KEY ROUNDS START_S — the admin views' latency on the daemon at URL (one
# keep-alive connection, timed here from request to last byte), p50 and p99 of ROUNDS calls each,
# against issue 14's targets; START_S is the start time bench/admin.sh measured. Exit 0: every target
# met, 1: one missed.
import http.client
import json
import sys
import time
import urllib.parse

url, key, rounds, start_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
auth = {"Authorization": "Bearer " + key}


def get(path):
    t0 = time.perf_counter()
    conn.request("GET", path, headers=auth)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        sys.exit(f"admin: GET {path} answered {r.status}: {body[:300]!r}")
    return ms, json.loads(body)["data"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


_, first = get("/api/v1/admin/connector-events")
endpoint = first["endpoints"][0]["id"]
cursor = first["events"]["nextCursor"]
deep = first
for _ in range(20):  # 20 pages in: a cursor into the middle of the newest thousand
    _, deep = get("/api/v1/admin/connector-events?cursor=" + urllib.parse.quote(deep["events"]["nextCursor"]))
deep_cursor = urllib.parse.quote(deep["events"]["nextCursor"])

views = [
    ("summary + first event page (admin)", "/api/v1/admin/connector-events", 50),
    ("summary + page 21 (admin, cursor)", "/api/v1/admin/connector-events?cursor=" + deep_cursor, 50),
    ("event page (list)", "/api/v1/connector-events?limit=50", 10),
    ("event page, cursor (list)", "/api/v1/connector-events?limit=50&cursor=" + deep_cursor, 10),
    ("event page, endpoint= (list)", "/api/v1/connector-events?limit=50&endpoint=" + endpoint, 10),
    ("event page, status=dead (1%)", "/api/v1/connector-events?limit=50&status=dead", 10),
    ("event page, status=queued (1%)", "/api/v1/connector-events?limit=50&status=queued", 10),
    ("summary, provider=stripe (none)", "/api/v1/admin/connector-events?provider=stripe", None),
    # The same-run ceiling: a keyed route that reads no store (what the machine's noise alone costs).
    ("ceiling: GET /api/v1/status", "/api/v1/status", None),
]
missed = 0
print(f"{'view':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  target")
for name, path, target in views:
    xs = [get(path)[0] for _ in range(rounds)]
    p99 = pct(xs, 99)
    ok = target is None or p99 <= target
    missed += 0 if ok else 1
    verdict = "-" if target is None else f"p99 <= {target} ms: {'met' if ok else 'MISSED'}"
    print(f"{name:40} {pct(xs, 50):8.2f} {p99:8.2f} {max(xs):8.2f}  {verdict}")
ok = start_s <= 1.0
missed += 0 if ok else 1
print(f"{'start (until /healthz answers)':40} {start_s * 1000:8.0f} {'':8} {'':8}  <= 1000 ms: {'met' if ok else 'MISSED'}")
jobs = first["jobs"]
print("jobs:", ", ".join(f"{k} {v}" for k, v in jobs.items()),
      "| oldest queued:", first["oldestQueuedJob"] and f"{first['oldestQueuedJob']['ageSeconds']} s")
sys.exit(1 if missed else 0)
