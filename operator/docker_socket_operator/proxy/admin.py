"""The admin listener, apart from the API port: /healthz (the process runs), /readyz (the daemon
answers `_ping`), /metrics (Prometheus text). One request per connection, then close."""

from __future__ import annotations

import asyncio
import contextlib

from docker_socket_operator.proxy.metrics import Metrics
from docker_socket_operator.proxy.upstream import UpstreamPool

READY_TIMEOUT = 2.0


class AdminServer:
    def __init__(self, pool: UpstreamPool, metrics: Metrics) -> None:
        self.pool = pool
        self.metrics = metrics

    async def daemon_ready(self) -> tuple[bool, str]:
        try:
            resp, _ = await asyncio.wait_for(
                self.pool.simple_get("/_ping", fresh=True), READY_TIMEOUT
            )
        except Exception as e:
            return False, f"Docker daemon unavailable at {self.pool.socket_path}: {e}"
        if resp.status != 200:
            return False, f"daemon answered _ping with {resp.status}"
        return True, "ok"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
            status, ctype, body = await self._route(method.decode("latin-1"), path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == b"HEAD" else body)
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", text, b"method not allowed\n"
        if path == "/healthz":
            return "200 OK", text, b"ok\n"
        if path == "/readyz":
            ready, why = await self.daemon_ready()
            return ("200 OK" if ready else "503 Service Unavailable"), text, why.encode() + b"\n"
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4", self.metrics.render().encode()
        return "404 Not Found", text, b"not found\n"
