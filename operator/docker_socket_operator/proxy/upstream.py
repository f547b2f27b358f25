"""Connections to the daemon's unix socket, kept alive and reused.

A connection goes back to the pool only when its response ended cleanly on a known framing;
after a hijack, an until-close body or any error it is closed. When the daemon cannot be
reached the proxy answers 502 `Docker daemon unavailable at <socket>: <error>` (one status for
refused, missing and broken sockets: to a client they all mean "the daemon is not there").
"""

from __future__ import annotations

import asyncio
import contextlib

from docker_socket_operator.proxy.chunked import (
    ChunkScanner,
)
from docker_socket_operator.proxy.http1 import (
    Framing,
    ResponseHead,
    UpstreamProtocolError,
    parse_response_head,
)

UPSTREAM_READ_LIMIT = 1 << 20  # StreamReader buffer limit (and max response head)
RESPONSE_HEAD_LIMIT = 256 * 1024
MAX_IDLE = 64


class UpstreamUnavailable(Exception):
    """The daemon socket could not be connected to."""


class UpstreamReader(asyncio.StreamReader):
    def buffered(self) -> int:
        """Bytes received and not read yet. asyncio has no public way to ask; the relay uses it
        to send a response head alone only when its body is not already here (long polls)."""
        return len(self._buffer)  # type: ignore[attr-defined]


class UpstreamConnection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: UpstreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def read_head(self, request_method: str) -> ResponseHead:
        """The next response head; 1xx interim responses other than 101 are skipped."""
        while True:
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                raise ConnectionResetError("daemon closed the connection before responding") from e
            except asyncio.LimitOverrunError as e:
                raise UpstreamProtocolError("response head too large") from e
            resp = parse_response_head(head, request_method)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    async def read_body(self, resp: ResponseHead, limit: int) -> bytes:
        """A whole response body (for bodies the proxy rewrites); chunked is decoded."""
        reader = self.reader
        if resp.framing is Framing.NONE:
            return b""
        if resp.framing is Framing.LENGTH:
            if resp.content_length > limit:
                raise UpstreamProtocolError("response body too large to filter")
            return await reader.readexactly(resp.content_length)
        if resp.framing is Framing.CLOSE:
            data = await reader.read(limit + 1)
            chunks = [data]
            total = len(data)
            while data:
                data = await reader.read(limit + 1 - total)
                chunks.append(data)
                total += len(data)
                if total > limit:
                    raise UpstreamProtocolError("response body too large to filter")
            return b"".join(chunks)
        scanner = ChunkScanner(collect=True, limit=limit)
        while not scanner.done:
            data = await reader.read(UPSTREAM_READ_LIMIT)
            if not data:
                raise UpstreamProtocolError("daemon closed inside a chunked body")
            if scanner.feed(data) != len(data):
                raise UpstreamProtocolError("bytes after the end of a response")
        return scanner.take()


class UpstreamPool:
    """Keep-alive connections to one unix socket."""

    def __init__(self, socket_path: str, max_idle: int = MAX_IDLE) -> None:
        self.socket_path = socket_path
        self.max_idle = max_idle
        self._idle: list[UpstreamConnection] = []

    def take_idle(self) -> UpstreamConnection | None:
        """A kept-alive connection, if one is idle (it may have gone stale meanwhile: a request
        that fails on it before any response byte is retried on a fresh one)."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def acquire(self) -> tuple[UpstreamConnection, bool]:
        """A connection and whether it came from the pool."""
        conn = self.take_idle()
        if conn is not None:
            return conn, True
        return await self.connect(), False

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        reader = UpstreamReader(limit=UPSTREAM_READ_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_unix_connection(lambda: protocol, self.socket_path)
        except OSError as e:
            raise UpstreamUnavailable(
                f"Docker daemon unavailable at {self.socket_path}: {e.strerror or e}"
            ) from e
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return UpstreamConnection(reader, writer)

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        if reusable and conn.usable and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def simple_get(
        self, path: str, limit: int = 16 << 20, *, fresh: bool = False
    ) -> tuple[ResponseHead, bytes]:
        """One GET with no request body (inspects, ping); the response is read whole.
        `fresh` dials the socket anew (readiness: can a *new* connection reach the daemon?)."""
        request = b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % path.encode("ascii")
        for attempt in (0, 1):
            conn, pooled = (await self.connect(), False) if fresh else await self.acquire()
            try:
                conn.writer.write(request)
                resp = await conn.read_head("GET")
                body = await conn.read_body(resp, limit)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                conn.close()
                if pooled and attempt == 0:
                    continue
                raise UpstreamUnavailable(
                    f"Docker daemon unavailable at {self.socket_path}: {e}"
                ) from e
            except BaseException:
                conn.close()
                raise
            self.release(conn, resp.reusable)
            return resp, body
        raise AssertionError("unreachable")
