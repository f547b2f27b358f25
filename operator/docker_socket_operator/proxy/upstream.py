"""Connections to the daemon's unix socket, kept alive and reused.

A connection goes back to the pool only when its response ended cleanly on a known framing;
after a hijack, an until-close body or any error it is closed. When the daemon cannot be
reached the proxy answers 502 `Docker daemon unavailable at <socket>: <error>` (one status for
refused, missing and broken sockets: to a client they all mean "the daemon is not there").
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from docker_socket_operator.policy.engines import classify_engine
from docker_socket_operator.policy.types import Engine
from docker_socket_operator.proxy.chunked import (
    ChunkError,
    ChunkScanner,
    ends_as_one_chunk,
    single_chunk,
)
from docker_socket_operator.proxy.http1 import (
    Framing,
    ResponseHead,
    UpstreamProtocolError,
    parse_response_head,
)
from docker_socket_operator.proxy.stream import Stream

UPSTREAM_READ_LIMIT = 1 << 20  # StreamReader buffer limit (and max response head)
RESPONSE_HEAD_LIMIT = 256 * 1024
MAX_IDLE = 64
ENGINE_TIMEOUT = 10.0  # seconds for /_ping + /version when identifying the engine


T = TypeVar("T")
Send = Callable[["UpstreamConnection"], Awaitable[T]]


class UpstreamUnavailable(Exception):
    """The daemon socket could not be connected to."""


class BodyRelay:
    """Relays one response body from the daemon's transport to the client's as it arrives,
    scanning (never re-encoding) its framing to find where it ends.

    Flow control: when the client's write buffer is over its high-water mark, reading from the
    daemon is paused and the waiting coroutine is woken to drain the client, then resume().
    `wait()` returns when the body ended, failed, or the relay paused."""

    __slots__ = (
        "_client",
        "_conn",
        "_head",
        "_high",
        "_remaining",
        "_scanner",
        "_upstream",
        "_waiter",
        "clean",
        "error",
        "finished",
        "framing",
        "paused",
    )

    def __init__(
        self,
        conn: UpstreamConnection,
        resp: ResponseHead,
        head: bytes,
        client: asyncio.WriteTransport,
    ) -> None:
        self._conn = conn
        self._upstream = conn.transport
        self._client = client
        self._high = client.get_write_buffer_limits()[1]
        self.framing = resp.framing
        self._remaining = resp.content_length
        self._scanner = ChunkScanner() if resp.framing is Framing.CHUNKED else None
        self._head: bytes | None = head
        self._waiter: asyncio.Future[None] | None = None
        self.clean = True  # the body ended on its framing with nothing after it
        self.finished = False
        self.paused = False
        self.error: BaseException | None = None

    def start(self) -> None:
        """Relay what already came with the head, then take over the daemon's bytes."""
        conn = self._conn
        data = conn.take_buffered()
        if data or (self.framing is Framing.LENGTH and self._remaining == 0):
            self.feed(data)
        else:
            # A long poll (containers.wait) or a quiet stream sends its head long before any
            # body, and the client may wait for that head before its next request.
            self._client.write(self._head or b"")
            self._head = None
        if not self.finished:
            if conn.eof_seen:
                self.eof()
            else:
                conn.sink = self

    def feed(self, data: bytes) -> None:
        if self.finished:
            self.clean = False  # the daemon sent more than one response: never reuse it
            return
        client = self._client
        if client.is_closing():
            self._finish(ConnectionResetError("client went away"))
            return
        scanner = self._scanner
        done = False
        if scanner is not None:
            try:
                used = scanner.feed(data)
            except ChunkError as e:
                self._finish(UpstreamProtocolError(f"malformed chunked response: {e}"))
                return
            done = scanner.done
        elif self.framing is Framing.LENGTH:
            used = min(len(data), self._remaining)
            self._remaining -= used
            done = self._remaining == 0
        else:
            used = len(data)
        if used != len(data):
            data = data[:used]
            self.clean = False
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        client.write(data)
        if done:
            self._finish(None)
        elif client.get_write_buffer_size() > self._high:
            self.paused = True
            self._upstream.pause_reading()
            self._wake()

    def eof(self) -> None:
        """The daemon closed: the end of an until-close body, otherwise a cut one."""
        if self.finished:
            return
        if self._head is not None:
            self._client.write(self._head)
            self._head = None
        if self.framing is Framing.CLOSE:
            self.clean = False
            self._finish(None)
        else:
            self._finish(ConnectionResetError("daemon closed inside a response body"))

    def resume(self) -> None:
        if self.paused and not self.finished:
            self.paused = False
            self._upstream.resume_reading()

    def _finish(self, error: BaseException | None) -> None:
        self.finished = True
        self.error = error
        if error is not None:
            self.clean = False
        self._conn.sink = None
        if self.paused:
            self.paused = False
            self._upstream.resume_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the body ended or the relay paused for the client to drain."""
        if self.finished or self.paused:
            return
        self._waiter = self._conn.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def run(self, client: Stream) -> bool:
        """Until the body ended, draining `client` whenever the relay paused on its backlog;
        True when it ended on its framing with nothing after it. Raises what cut it."""
        while not self.finished:
            await self.wait()
            if self.paused:
                await client.drain()
                self.resume()
        if self.error is not None:
            raise self.error
        return self.clean


class AnswerRelay:
    """Sends an answer to the client from the daemon connection's data callback as soon as
    its head is whole, when `as_is` says the client gets the daemon's bytes unchanged: an
    answer that came whole goes out at once; one that did not (a long list, logs, a stream)
    goes out as far as it came, and its body relay (`body`) takes the rest as it arrives. The
    waiting coroutine then only counts and logs it, and waits for `body`. Any other answer
    (filtered, withheld, a switch of protocols, an interim 1xx, one with no body or a body
    until close) is left to that coroutine."""

    __slots__ = ("as_is", "body", "clean", "client", "method", "resp")

    def __init__(
        self, client: asyncio.WriteTransport, method: str, as_is: Callable[[ResponseHead], bool]
    ) -> None:
        self.client = client
        self.method = method
        self.as_is = as_is
        self.resp: ResponseHead | None = None  # the answer being sent
        self.body: BodyRelay | None = None  # relays the rest of an answer that came in part
        self.clean = False  # nothing followed its body on the daemon connection

    def offer(self, conn: UpstreamConnection, data: bytes) -> None:
        """`data` arrived on `conn`: buffer it, or send the answer whose head it completes.
        An answer that is all of `data`, with nothing buffered before it (how the daemon
        sends a ping, an inspect or a list), goes out as the very bytes received, never
        copied."""
        buffered = conn.buffer
        if buffered:
            buffered += data
            whole = self._whole(buffered)
        else:
            whole = self._whole(data)
            if whole == len(data):
                self.client.write(data)
                self.clean = True
                return
            buffered += data
        if whole > 0:
            self.client.write(conn.consume(whole))
            self.clean = not buffered
        elif whole < 0:
            resp = self.resp
            assert resp is not None
            body = self.body = BodyRelay(conn, resp, conn.consume(-whole), self.client)
            body.start()

    def _whole(self, buf: bytes | bytearray) -> int:
        """For an as-is answer at the start of `buf` (then `resp` is its head): its length
        when all of it is there, or minus its head's length when only a part is. 0 for no
        whole head, or an answer the coroutine reads."""
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end + 4 > RESPONSE_HEAD_LIMIT or self.client.is_closing():
            return 0
        try:
            resp = parse_response_head(bytes(buf[: end + 4]), self.method)
        except UpstreamProtocolError:
            return 0  # the coroutine reads it again and fails it
        framing = resp.framing
        if resp.status < 200 or not (framing is Framing.LENGTH or framing is Framing.CHUNKED):
            return 0
        if not self.as_is(resp):
            return 0
        self.resp = resp
        start = end + 4
        if framing is Framing.LENGTH:
            whole = start + resp.content_length
            return whole if len(buf) >= whole else -start
        if ends_as_one_chunk(buf, start):
            return len(buf)  # one chunk and the last one, nothing after (a list, an info)
        return -start


class UpstreamConnection(Stream):
    """One connection to the daemon."""

    # While a coroutine waits for a response head: relays a whole as-is answer at once.
    relay: AnswerRelay | None = None

    @property
    def usable(self) -> bool:
        return not self.transport.is_closing() and not self.at_eof()

    def data_received(self, data: bytes) -> None:
        relay = self.relay
        if relay is not None and self.sink is None:
            # The answer goes out before the waiting coroutine is woken: its wake-up is
            # bookkeeping, off the answer's path.
            self.relay = None
            relay.offer(self, data)
            self._wake()
            return
        super().data_received(data)

    async def read_head(
        self, request_method: str, relay: AnswerRelay | None = None
    ) -> ResponseHead:
        """The next response head; 1xx interim responses other than 101 are skipped. With
        `relay`, an answer that arrives whole is sent to the client as it arrives: then
        `relay.resp` is that answer, already consumed."""
        while True:
            buf = self.buffer
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > RESPONSE_HEAD_LIMIT:
                    raise UpstreamProtocolError("response head too large")
                self.relay = relay
                try:
                    await self.wait_more()
                except asyncio.IncompleteReadError as e:
                    raise ConnectionResetError(
                        "daemon closed the connection before responding"
                    ) from e
                finally:
                    self.relay = None
                if relay is not None and relay.resp is not None:
                    return relay.resp  # sent, or being sent by relay.body
                continue
            if end + 4 > RESPONSE_HEAD_LIMIT:
                raise UpstreamProtocolError("response head too large")
            resp = parse_response_head(self.consume(end + 4), request_method)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    async def read_body(self, resp: ResponseHead, limit: int) -> bytes:
        """A whole response body (for bodies the proxy rewrites); chunked is decoded."""
        reader = self
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
        whole = single_chunk(self.buffer, limit)
        if whole is not None:
            self.buffer.clear()
            self._resume()
            return whole
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
        # Which engine answers on the socket (policy/engines.py): asked at start and again
        # whenever the daemon was unreachable or its socket file was replaced (a restart, or
        # another engine); "unknown" (the strictest checks) until an answer is clear.
        self.engine: Engine = "unknown"
        self._engine_socket: tuple[int, int] | None = None
        self._engine_stale = True
        self._engine_lock = asyncio.Lock()

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

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_unix_connection(
                lambda: UpstreamConnection(UPSTREAM_READ_LIMIT), self.socket_path
            )
        except OSError as e:
            self._engine_stale = True
            raise UpstreamUnavailable(
                f"Docker daemon unavailable at {self.socket_path}: {e.strerror or e}"
            ) from e
        if not self._engine_stale and self._socket_identity() != self._engine_socket:
            self._engine_stale = True
        return conn

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        if reusable and conn.usable and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def request(
        self, send: Send[T], *, replayable: bool = True, fresh: bool = False
    ) -> tuple[UpstreamConnection, T]:
        """Send one request with `send` (which writes it and reads the response head) and
        return the connection, now the caller's to release or close. The one retry rule: a
        pooled connection the daemon had closed fails before any response byte, and the
        request goes once more on a fresh connection, if it can be sent again (`replayable`:
        not a request body streamed from the client). `fresh` dials anew (readiness: can a
        *new* connection reach the daemon?)."""
        conn = None if fresh else self.take_idle()
        pooled = conn is not None
        if conn is None:
            conn = await self.connect()
        while True:
            try:
                return conn, await send(conn)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                conn.close()
                if not (pooled and replayable):
                    raise UpstreamUnavailable(
                        f"Docker daemon unavailable at {self.socket_path}: {e}"
                    ) from e
            except BaseException:
                conn.close()
                raise
            pooled = False
            conn = await self.connect()

    async def simple_get(
        self, path: str, limit: int = 16 << 20, *, fresh: bool = False
    ) -> tuple[ResponseHead, bytes]:
        """One GET with no request body (inspects, ping); the response is read whole."""
        request = b"GET %s HTTP/1.1\r\nHost: docker\r\n\r\n" % path.encode("ascii")

        async def send(conn: UpstreamConnection) -> tuple[ResponseHead, bytes]:
            conn.write(request)
            resp = await conn.read_head("GET")
            return resp, await conn.read_body(resp, limit)

        conn, (resp, body) = await self.request(send, fresh=fresh)
        self.release(conn, resp.reusable)
        return resp, body

    def _socket_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.socket_path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    async def current_engine(self) -> Engine:
        """The engine behind the socket, asked again first when the last answer is stale."""
        if self._engine_stale:
            async with self._engine_lock:
                if self._engine_stale:
                    await self.detect_engine()
        return self.engine

    async def detect_engine(self) -> Engine:
        """Ask /_ping (headers) and /version (components); "unknown" when either fails."""
        identity = self._socket_identity()
        try:
            async with asyncio.timeout(ENGINE_TIMEOUT):
                ping, _ = await self.simple_get("/_ping", 4096, fresh=True)
                resp, raw = await self.simple_get("/version", 1 << 20)
            version = json.loads(raw) if resp.status == 200 else None
        except (
            UpstreamUnavailable,
            UpstreamProtocolError,
            ConnectionError,
            ValueError,
            TimeoutError,
        ):
            self.engine = "unknown"
            self._engine_stale = True
            return self.engine
        self.engine = classify_engine(response_headers(ping.raw), version)
        self._engine_socket = identity
        self._engine_stale = False
        return self.engine


def response_headers(head: bytes) -> dict[str, str]:
    """A response head's fields by lower-case name (the last of a repeated one)."""
    fields: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return fields
