"""Moving bodies: request bodies in (buffered or streamed), response bodies out (relayed raw,
or filtered), and the raw bidirectional pipe of a hijacked attach/exec.

Relays never re-encode: the bytes the daemon (or client) framed are forwarded as they are, and
the framing is only scanned to know where the message ends. Only bodies the policy must see or
rewrite are decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from docker_socket_operator.policy.filters import EventVisibility
from docker_socket_operator.proxy.chunked import (
    LAST_CHUNK,
    BodyTooLarge,
    ChunkError,
    ChunkScanner,
    encode_chunk,
)
from docker_socket_operator.proxy.http1 import (
    Framing,
    HttpError,
    RequestHead,
    ResponseHead,
    UpstreamProtocolError,
)
from docker_socket_operator.proxy.stream import Stream
from docker_socket_operator.proxy.upstream import BodyRelay, UpstreamConnection

RELAY_BLOCK = 256 * 1024
SMALL_BODY = 64 * 1024  # bodies up to this size go out in the same write as their head
DRAIN_ABOVE = 256 * 1024


async def drain(writer: Stream) -> None:
    """Wait for the peer only when a backlog has built up (an await per small write costs
    more than the write itself on the hot path)."""
    if writer.transport.get_write_buffer_size() > DRAIN_ABOVE or writer.transport.is_closing():
        await writer.drain()


# -- request bodies (from the client) ---------------------------------------------------------


def _body_timeout(seconds: float) -> HttpError:
    return HttpError(408, f"request body not received within {seconds:g} seconds")


async def read_request_body(reader: Stream, req: RequestHead, limit: int, seconds: float) -> bytes:
    """The whole request body, chunked decoded, for the policy to inspect (413 over `limit`,
    408 when it takes longer than `seconds` in all)."""
    try:
        async with asyncio.timeout(seconds):
            return await _read_request_body(reader, req, limit)
    except TimeoutError:
        raise _body_timeout(seconds) from None


async def _read_request_body(reader: Stream, req: RequestHead, limit: int) -> bytes:
    if req.content_length is not None:
        if req.content_length > limit:
            raise HttpError(413, f"request body larger than {limit} bytes")
        try:
            return await reader.readexactly(req.content_length)
        except asyncio.IncompleteReadError:
            raise HttpError(400, "request body shorter than its Content-Length") from None
    if not req.chunked:
        return b""
    scanner = ChunkScanner(collect=True, limit=limit)
    try:
        await _walk_chunked(reader, scanner, None, None)
    except BodyTooLarge:
        raise HttpError(413, f"request body larger than {limit} bytes") from None
    return scanner.take()


async def stream_request_body(
    reader: Stream, req: RequestHead, writer: Stream, seconds: float
) -> None:
    """Relay a body the policy does not need (build contexts, archives) as the client framed
    it; never reads past its end, so a pipelined next request stays in the reader. Large
    uploads take as long as they take, but the client may not pause for `seconds`
    (408); time spent waiting for the daemon to take the bytes does not count."""
    try:
        async with asyncio.timeout(None) as clock:
            await _stream_request_body(reader, req, writer, _ReadClock(clock, seconds))
    except TimeoutError:
        raise _body_timeout(seconds) from None


class _ReadClock:
    """One timer for a whole streamed body, armed only while a read from the client waits."""

    __slots__ = ("clock", "loop", "seconds")

    def __init__(self, clock: asyncio.Timeout, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()

    def reading(self) -> None:
        self.clock.reschedule(self.loop.time() + self.seconds)

    def writing(self) -> None:
        self.clock.reschedule(None)


async def _stream_request_body(
    reader: Stream, req: RequestHead, writer: Stream, clock: _ReadClock
) -> None:
    if req.content_length:
        remaining = req.content_length
        while remaining:
            clock.reading()
            data = await reader.read(min(remaining, RELAY_BLOCK))
            if not data:
                raise HttpError(400, "request body shorter than its Content-Length")
            remaining -= len(data)
            clock.writing()
            writer.write(data)
            await writer.drain()
    elif req.chunked:
        await _walk_chunked(reader, ChunkScanner(), writer, clock)


async def _walk_chunked(
    reader: Stream,
    scanner: ChunkScanner,
    writer: Stream | None,
    clock: _ReadClock | None,
) -> None:
    pending: list[bytes] = []
    size = 0
    try:
        while not scanner.done:
            if clock is not None:
                clock.reading()
            if scanner.wants_line:
                data = await reader.readuntil(b"\n")
            else:
                data = await reader.read(min(scanner.safe_read_size(), RELAY_BLOCK))
                if not data:
                    raise HttpError(400, "connection closed inside a chunked body")
            scanner.feed(data)  # reads are sized so that all of `data` is this body's
            if writer is not None:
                pending.append(data)
                size += len(data)
                if size >= RELAY_BLOCK or scanner.done:
                    if clock is not None:
                        clock.writing()
                    writer.write(b"".join(pending))
                    pending.clear()
                    size = 0
                    await writer.drain()
    except ChunkError as e:
        raise HttpError(400, f"malformed chunked body: {e}") from None
    except asyncio.IncompleteReadError:
        raise HttpError(400, "connection closed inside a chunked body") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "malformed chunked body: line too long") from None


async def discard_request_body(
    reader: Stream, req: RequestHead, limit: int, seconds: float
) -> bool:
    """Skip an unread body after a deny so the connection stays usable; False when it is too
    big (or unframed) to skip, or slower than `seconds`, and the connection must be closed."""
    if req.chunked or req.expect_continue:
        return False
    if not req.content_length:
        return True
    if req.content_length > limit:
        return False
    try:
        async with asyncio.timeout(seconds):
            await reader.readexactly(req.content_length)
    except (asyncio.IncompleteReadError, TimeoutError):
        return False
    return True


# -- response bodies (from the daemon) --------------------------------------------------------


async def relay_response(
    up: UpstreamConnection, resp: ResponseHead, head: bytes, client: Stream
) -> bool:
    """Send `head` and relay the body unchanged. True when the body ended on its framing
    (the upstream connection is reusable if the head says so).

    The body moves in the daemon connection's data_received (see BodyRelay): this coroutine
    only waits for its end, or drains the client when the relay paused on a backlog."""
    if resp.framing is Framing.NONE:
        client.write(head)
        await drain(client)
        return True
    relay = BodyRelay(up, resp, head, client.transport)
    relay.start()
    return await relay.run(client)


async def relay_events_filtered(
    up: UpstreamConnection,
    resp: ResponseHead,
    client: Stream,
    visible: EventVisibility,
    lookup: Callable[[str, str], Awaitable[Any]],
) -> bool:
    """The events stream with only the events the client may see: each JSON line is decoded,
    kept or dropped, and sent at once (one chunk per event, so nothing waits in a buffer).
    Lines that are not JSON objects are dropped (fail closed). An object the filter does not
    know yet is looked up first (`lookup(kind, ref)`: its inspect answer, None if none)."""
    reader = up
    chunked = resp.framing is Framing.CHUNKED
    client.write(resp.raw)
    await client.drain()
    scanner = ChunkScanner(collect=True, limit=1 << 62)
    pending = bytearray()
    clean = True
    while True:
        data = await reader.read(RELAY_BLOCK)
        if not data:
            if chunked:
                raise ConnectionResetError("daemon closed inside the events stream")
            break
        if chunked:
            try:
                used = scanner.feed(data)
            except ChunkError as e:
                raise UpstreamProtocolError(f"malformed chunked response: {e}") from None
            clean = clean and used == len(data)
            pending += scanner.take()
        else:
            pending += data
        out: list[bytes] = []
        start = 0
        while (nl := pending.find(b"\n", start)) >= 0:
            line = bytes(pending[start : nl + 1])
            start = nl + 1
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            for kind, ref in visible.lookups(event):
                visible.learn(kind, ref, await lookup(kind, ref))
            if visible(event):
                out.append(encode_chunk(line) if chunked else line)
        del pending[:start]
        if len(pending) > 1 << 20:
            raise UpstreamProtocolError("event line too long")
        if out:
            client.write(b"".join(out))
            await client.drain()
        if chunked and scanner.done:
            client.write(LAST_CHUNK)
            await client.drain()
            break
    return clean and chunked


# -- hijacked streams -------------------------------------------------------------------------


async def pipe_hijacked(client: Stream, up: UpstreamConnection) -> None:
    """Raw bytes both ways after a 101 (or Docker's raw-stream 200). The client's EOF (stdin
    closed) is passed on as a half-close so the command sees EOF and its output still flows
    back; the pipe ends when the daemon closes. No idle timeout."""

    async def client_to_daemon() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await client.read(RELAY_BLOCK):
                up.write(data)
                await up.drain()
            if up.can_write_eof():
                up.write_eof()

    upload = asyncio.create_task(client_to_daemon())
    try:
        while data := await up.read(RELAY_BLOCK):
            client.write(data)
            await client.drain()
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await upload
