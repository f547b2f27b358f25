"""The floor of a Python hop: a relay on uvloop that checks nothing.

Each client connection gets its own daemon connection; bytes go both ways as they come, in
protocol callbacks (no coroutine, no parsing, no policy). `make bench` runs it beside the
proxy ("bare Python relay") so that its table shows what any Python proxy on this machine
pays per request before it reads a single header. Never a way to serve clients: it would
pass anything.

With WORK_US it first spins that long before each write (once per request, once per answer):
a calibration, not a proxy. It shows in the same run what a hop's own work on the request's
path costs in latency on this machine (bench/README.md: on a VM whose idle vCPUs halt, more
than the work itself).

    python bench/bare_relay.py DAEMON_SOCKET PORT [WORK_US]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import cast

import uvloop


class Upstream(asyncio.Protocol):
    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class Client(asyncio.Protocol):
    upstream_protocol: type[Upstream] = Upstream

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.upstream: asyncio.Transport | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        loop = asyncio.get_running_loop()
        up, _ = await loop.create_unix_connection(
            lambda: self.upstream_protocol(self.transport), self.socket_path
        )
        self.upstream = up
        for data in self.pending:
            up.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


def work(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class WorkedUpstream(Upstream):
    """The calibration relay's daemon side: WORK_US of work before each write."""

    work_s = 0.0

    def data_received(self, data: bytes) -> None:
        work(self.work_s)
        super().data_received(data)


class WorkedClient(Client):
    """The calibration relay's client side (kept apart: the floor's path has no extra call)."""

    work_s = 0.0

    upstream_protocol: type[Upstream] = WorkedUpstream

    def data_received(self, data: bytes) -> None:
        if self.upstream is not None:
            work(self.work_s)
        super().data_received(data)


async def serve(socket_path: str, port: int, work_us: float) -> None:
    loop = asyncio.get_running_loop()
    if work_us:
        WorkedClient.work_s = WorkedUpstream.work_s = work_us / 1e6
    factory = WorkedClient if work_us else Client
    server = await loop.create_server(lambda: factory(socket_path), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0))
