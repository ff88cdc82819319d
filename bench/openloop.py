"""A small open-loop HTTP load generator: requests leave on a fixed schedule whatever the server does.

wrk (closed loop) waits for each response before sending the next request on a connection, so a
slow server is sent less and its queueing never shows in the latencies ("coordinated omission").
Here request i is due at start + i/rate, and its latency is measured from that due time, so
queueing behind a slow response counts. Keep-alive connections are pooled; a new one is opened
when every pooled one is busy. As HTTP clients do for idempotent requests (RFC 9110, 9.2.2), a GET
that fails on a reused connection before any response byte arrives (the server closed it while
idle) is sent once more on a fresh connection; only that retry's failure counts as an error.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class OpenLoopResult:
    """Latencies (s) of completed requests, plus what went wrong."""

    latencies: list[float] = field(default_factory=list)
    non_2xx: int = 0
    errors: int = 0
    sent: int = 0
    seconds: float = 0.0
    max_connections: int = 0


class _Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def take(self, fresh: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle and not fresh:
            return self.idle.pop()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def give(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.append(conn)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


class _NothingBack(Exception):
    """The connection closed before any byte of the response: the request may be resent."""


async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                    request: bytes) -> tuple[int, bool]:
    """Send one request and read the whole response (Content-Length bodies).

    Returns the status and whether the connection may be reused.
    """
    reader, writer = conn
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        raise _NothingBack() from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _NothingBack() from exc
    lines = head.decode("latin-1").split("\r\n")
    status, length, reusable = int(lines[0].split()[1]), 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection":
            reusable = value.strip().lower() != "close"
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not supported by this generator")
    if length:
        await reader.readexactly(length)
    return status, reusable


async def _once(pool: _Pool, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                request: bytes, timeout: float) -> int:
    """One exchange on `conn`; the connection goes back to the pool only if it may be reused."""
    try:
        status, reusable = await asyncio.wait_for(_exchange(conn, request), timeout)
    except BaseException:
        conn[1].close()
        raise
    if reusable:
        pool.give(conn)
    else:
        conn[1].close()
    return status


async def _send(pool: _Pool, request: bytes, timeout: float) -> int:
    """One request's status; resent once on a fresh connection if a reused one was found closed."""
    reused = bool(pool.idle)
    try:
        return await _once(pool, await pool.take(), request, timeout)
    except _NothingBack:
        if not reused:
            raise
    return await _once(pool, await pool.take(fresh=True), request, timeout)


async def _run(host: str, port: int, groups: Sequence[Sequence[str]], rate: float,
               seconds: float, timeout: float) -> list[OpenLoopResult]:
    """Each due time sends one group's requests at once; a result per place in the group."""
    width = max(len(group) for group in groups)
    results = [OpenLoopResult() for _ in range(width)]
    pool = _Pool(host, port)
    total = int(rate * seconds)
    requests = [[f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in group]
                for group in groups]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, place: int, request: bytes) -> None:
        due, result = start + i / rate, results[place]
        try:
            status = await _send(pool, request, timeout)
            result.latencies.append(loop.time() - due)
            result.non_2xx += not 200 <= status < 300
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, _NothingBack):
            result.errors += 1

    tasks = []
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for place, request in enumerate(requests[i % len(requests)]):
            tasks.append(asyncio.create_task(one(i, place, request)))
            results[place].sent += 1
    await asyncio.gather(*tasks)
    for result in results:
        result.seconds = loop.time() - start
        result.max_connections = pool.opened
    pool.close()
    return results


def open_loop(base_url: str, paths: Sequence[str], rate: float, seconds: float,
              timeout: float = 10.0) -> OpenLoopResult:
    """GET `paths` round-robin at `rate` requests/s for `seconds`, open loop."""
    return open_loop_together(base_url, [[p] for p in paths], rate, seconds, timeout)[0]


def open_loop_together(base_url: str, groups: Sequence[Sequence[str]], rate: float,
                       seconds: float, timeout: float = 10.0) -> list[OpenLoopResult]:
    """GET each group's paths at once (as a page loads its frames), `rate` groups/s, open loop.

    Returns one result per place in a group (the first path of each group, the second, ...).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    t0 = time.perf_counter()
    results = asyncio.run(_run(parts.hostname or "127.0.0.1", parts.port or 80, groups, rate,
                               seconds, timeout))
    for result in results:
        result.seconds = time.perf_counter() - t0
    return results
