#!/usr/bin/env python3
"""Raw-socket request-smuggling and strictness probes for the spike-13 servers.

    probes.py PUBLIC_PORT [LABEL]

Each probe sends raw bytes on one connection, reads until the server closes or stays silent for
1 s, and prints the status lines it got and whether the connection was closed. A probe carries a
smuggled request (GET /smuggled) where a lenient parser would take body bytes for a request; more
responses than legitimate requests means the smuggled request was parsed and answered.
"""
import re
import socket
import sys
import time

PORT = int(sys.argv[1])
LABEL = sys.argv[2] if len(sys.argv) > 2 else ""
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
H = b"Host: 127.0.0.1\r\n"


def post(headers: bytes, body: bytes, method=b"POST", path=b"/hook") -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def chunked(smuggle=True) -> bytes:
    return b"5\r\nhello\r\n0\r\n\r\n" + (SMUGGLED if smuggle else b"")


PROBES = [
    # name, bytes, legitimate requests in it
    ("valid POST, keep-alive", post(b"Content-Length: 5\r\n", b"hello"), 1),
    ("two pipelined valid POSTs", post(b"Content-Length: 5\r\n", b"hello") * 2, 2),
    ("dup Content-Length 5 then %d (body = hello+smuggled)" % (5 + len(SMUGGLED)),
     post(b"Content-Length: 5\r\nContent-Length: %d\r\n" % (5 + len(SMUGGLED)), b"hello" + SMUGGLED), 1),
    ("dup Content-Length %d then 5" % (5 + len(SMUGGLED)),
     post(b"Content-Length: %d\r\nContent-Length: 5\r\n" % (5 + len(SMUGGLED)), b"hello" + SMUGGLED), 1),
    ("dup Content-Length equal (5, 5)", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 1),
    ("Content-Length: 5, 5 (list)", post(b"Content-Length: 5, 5\r\n", b"hello"), 1),
    ("TE chunked alone, smuggled after 0-chunk", post(b"Transfer-Encoding: chunked\r\n", chunked()), 1),
    ("TE chunked + CL covering all (CL.TE)",
     post(b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(chunked()), chunked()), 1),
    ("CL 3 + TE chunked (TE.CL)", post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", chunked()), 1),
    ("TE: gzip, chunked + CL", post(b"Transfer-Encoding: gzip, chunked\r\nContent-Length: %d\r\n" % len(chunked()),
                                    chunked()), 1),
    ("TE: xchunked + CL", post(b"Transfer-Encoding: xchunked\r\nContent-Length: %d\r\n" % len(chunked()),
                               chunked()), 1),
    ("GET with Content-Length body = smuggled",
     post(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED, method=b"GET"), 1),
    ("HEAD with Content-Length body = smuggled",
     post(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED, method=b"HEAD"), 1),
    ("POST without Content-Length, body = smuggled", post(b"", SMUGGLED), 1),
    ("Content-Length: +%d" % len(SMUGGLED), post(b"Content-Length: +%d\r\n" % len(SMUGGLED), SMUGGLED), 1),
    ("Content-Length: 5x", post(b"Content-Length: 5x\r\n", b"hello"), 1),
    ("Content-Length: -1", post(b"Content-Length: -1\r\n", b""), 1),
    ("'Content-Length :' (space before colon) = smuggled",
     post(b"Content-Length : %d\r\n" % len(SMUGGLED), SMUGGLED), 1),
    ("over the body cap (300000), first body bytes = smuggled",
     post(b"Content-Length: 300000\r\n", SMUGGLED), 1),
    ("404 path with body = smuggled", post(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED, path=b"/nope"), 1),
    ("no Host", b"POST /hook HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 1),
    ("two Host headers", post(b"Host: evil\r\nContent-Length: 5\r\n", b"hello"), 1),
    ("100 header lines (under 8 KiB)", post(b"".join(b"X-%d: a\r\n" % i for i in range(100)) +
                                            b"Content-Length: 5\r\n", b"hello"), 1),
    ("20 KiB of headers", post(b"X-Big: " + b"a" * 20000 + b"\r\nContent-Length: 5\r\n", b"hello"), 1),
    ("obs-fold continuation line", post(b"X-A: a\r\n b\r\nContent-Length: 5\r\n", b"hello"), 1),
    ("bare LF line ends", b"POST /hook HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 5\n\nhello", 1),
    ("HTTP/1.0 without Connection", b"POST /hook HTTP/1.0\r\n" + H + b"Content-Length: 5\r\n\r\nhello", 1),
]


def run(data: bytes):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    s.sendall(data)
    got = b""
    closed = "open"
    s.settimeout(1.0)
    t_end = time.time() + 4
    while time.time() < t_end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = "reset"
            break
        if not b:
            closed = "closed"
            break
        got += b
    s.close()
    return walk(got), closed


def walk(got: bytes):
    """The responses in `got`, each framed by its Content-Length; a tail that is not a whole
    response (or a body that is itself a status line and headers) is reported as malformed."""
    out = []
    while got:
        m = re.match(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n(.*?)\r\n\r\n", got, re.S)
        if not m:
            out.append("garbage")
            break
        n = re.search(rb"(?im)^content-length:\s*(\d+)", m.group(2))
        if n:
            end = m.end() + int(n.group(1))
        elif re.search(rb"(?im)^connection:\s*close", m.group(2)):
            end = len(got)  # framed by the close
        else:
            end = m.end()
        body = got[m.end():end]
        out.append(m.group(1).decode() + ("(malformed: body holds a second header block)" if body.startswith(b"HTTP/1.") else ""))
        got = got[end:]
    return out


print("probes against 127.0.0.1:%d %s" % (PORT, LABEL))
for name, data, legit in PROBES:
    try:
        statuses, closed = run(data)
    except OSError as e:
        statuses, closed = [], "error %s" % e
    smuggled = len([x for x in statuses if x != "garbage"]) > legit
    print("%-55s %-16s %-7s %s" % (name, ",".join(map(str, statuses)) or "-", closed,
                                   "SMUGGLED REQUEST ANSWERED" if smuggled else ""))
