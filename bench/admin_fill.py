#!/usr/bin/env python3
# bench/admin_fill.py STORE_DB N — writes N webhook events, each with its job and dedup key, into a
# daemon's store.db (stopped) in one transaction, through the store's schema as the daemon migrated it
# (its indexes; the job counts of webhook_job_counts, which the daemon's writer adds per batch since
# migration 9, are added here for the jobs written; the dedup keys as one run of blocks, the format of
# common/store/dedup_runs.hpp since migration 12). The endpoints are the ones the
# store holds (bench/admin.sh made them through the API); events go to them in turn.
#
# Received times spread evenly over the last 7 days, ascending (as deliveries arrive); ids are
# UUIDv7-shaped from that time. Jobs: 1% queued (never relayed: no target), 1% failed (next attempt
# in an hour), 1% dead, the rest succeeded.
import os
import sqlite3
import sys
import time

db_path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(db_path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-262144")  # 256 MiB
version = db.execute("PRAGMA user_version").fetchone()[0]
if version < 12:
    sys.exit(f"admin_fill: {db_path} is at schema {version}; this script writes for 12 (start the daemon once)")
endpoints = db.execute("SELECT id, user_id FROM webhook_endpoints WHERE deleted_at IS NULL").fetchall()
if not endpoints:
    sys.exit(f"admin_fill: {db_path} has no webhook endpoint")

now = int(time.time() * 1000)
start = now - 7 * 86400 * 1000
step = (now - start - 60_000) // max(n, 1)
body = b'{"ref":"refs/heads/main","repository":{"full_name":"octo/bench"},"pusher":{"name":"bench"}}'
headers = '[["X-GitHub-Event","push"],["Content-Type","application/json"]]'
rand = os.urandom(8).hex()


def uuid7(ms, seq):
    return f"{ms >> 16:08x}-{ms & 0xffff:04x}-7{seq >> 48 & 0xfff:03x}-8{seq >> 36 & 0xfff:03x}-{seq & 0xfffffffff:012x}"


def rows():
    for i in range(n):
        ms = start + i * step
        ep, user = endpoints[i % len(endpoints)]
        ev = uuid7(ms, 2 * i)
        job = uuid7(ms, 2 * i + 1)
        key = f"github:{rand}-{i:08d}"
        r = i % 100
        state = "queued" if r == 0 else "failed" if r == 1 else "dead" if r == 2 else "succeeded"
        yield ms, ep, user, ev, job, key, state


db.execute("BEGIN")
ev_sql = ("INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at) "
          "VALUES(?,?,?,'github',?,'push',?,?,?)")
job_sql = ("INSERT INTO webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,"
           "last_error,created_at,updated_at,finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)")
batch_ev, batch_job, dedup = [], [], []
job_counts = {}
for ms, ep, user, ev, job, key, state in rows():
    job_counts[(ep, state)] = job_counts.get((ep, state), 0) + 1
    batch_ev.append((ev, ep, user, key, headers, body, ms))
    done = state in ("succeeded", "dead")
    batch_job.append((job, ev, ep, user, state, 0 if state == "queued" else (9 if state == "dead" else 1),
                      ms + 3_600_000 if state == "failed" else ms, None if state == "queued" else (200 if state ==
                      "succeeded" else 500), "relay target answered HTTP 500" if state in ("failed", "dead") else None,
                      ms, ms, ms if done else None))
    dedup.append((ep, key, ev, ms))
    if len(batch_ev) >= 10000:
        db.executemany(ev_sql, batch_ev)
        db.executemany(job_sql, batch_job)
        batch_ev, batch_job = [], []
if batch_ev:
    db.executemany(ev_sql, batch_ev)
    db.executemany(job_sql, batch_job)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)


# The dedup keys: one run, blocks of up to ~1.8 KB of one endpoint's keys in key order (dedup_runs.hpp).
dedup.sort()
run = db.execute("SELECT COALESCE(MAX(run),0)+1 FROM webhook_dedup_runs").fetchone()[0]
blocks, cur = [], None  # cur: [endpoint, first_key, keys, oldest, bytes]
for ep, key, ev, ms in dedup:
    if cur and (cur[0] != ep or len(cur[4]) >= 1800):
        blocks.append(cur)
        cur = None
    if not cur:
        cur = [ep, key, 0, ms, bytearray()]
    k, e = key.encode(), ev.encode()
    cur[4] += varint(len(k)) + k + varint(len(e)) + e + ms.to_bytes(8, "little", signed=True)
    cur[2] += 1
    cur[3] = min(cur[3], ms)
if cur:
    blocks.append(cur)
db.executemany("INSERT INTO webhook_dedup(run,endpoint_id,first_key,keys,oldest,block) VALUES(?,?,?,?,?,?)",
               [(run, ep, first, keys, oldest, bytes(data)) for ep, first, keys, oldest, data in blocks])
if dedup:
    db.execute("INSERT INTO webhook_dedup_runs(run,keys,oldest,newest) VALUES(?,?,?,?)",
               (run, len(dedup), min(d[3] for d in dedup), max(d[3] for d in dedup)))
# The jobs per endpoint and state, as the daemon's writer counts them (no trigger counts an insert).
db.executemany("INSERT INTO webhook_job_counts(endpoint_id,state,n) VALUES(?,?,?) "
               "ON CONFLICT (endpoint_id,state) DO UPDATE SET n = n + excluded.n",
               [(ep, state, c) for (ep, state), c in job_counts.items()])
# The endpoints' counters, as the daemon would have kept them.
for k, (ep, _) in enumerate(endpoints):
    count = n // len(endpoints) + (1 if k < n % len(endpoints) else 0)
    db.execute("UPDATE webhook_endpoints SET received=received+?, last_delivery_at=? WHERE id=?",
               (count, start + (n - 1) * step, ep))
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
