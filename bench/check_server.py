#!/usr/bin/env python3
"""bench/check_server.py: a counting HTTP/1.1 server for `bench/public check`, which tests the load client.

It answers every request 200 with a small JSON body, keeps connections alive, never times anything
out, and listens with a deep accept queue (8192): unlike cpp-httplib (a backlog of 5), it loses no
connection attempt, so every request the client sends is answered and the two counts must agree.
`GET /count` answers "<requests> <distinct peer addresses> <peers 127.1.*> <127.2.*> <127.3.*>"
(itself not counted). Prints its port on stdout; listens on 127.0.0.1 only; exits on SIGTERM.
"""
import asyncio
import signal

requests = 0
peers = set()


async def handle(reader, writer):
    global requests
    peers.add(writer.get_extra_info("peername")[0])
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET /count "):
                nets = [sum(1 for p in peers if p.startswith("127.%d." % n)) for n in (1, 2, 3)]
                body = ("%d %d %d %d %d" % (requests, len(peers), *nets)).encode()
            else:
                requests += 1
                body = b'{"data":{"eventId":"check"},"success":true}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=8192)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


asyncio.run(main())
