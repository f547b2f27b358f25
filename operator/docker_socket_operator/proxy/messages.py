"""Messages on the wire: request heads read off the client stream, requests rebuilt for the
daemon from parsed fields only, JSON bodies the proxy rewrites."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import orjson

from docker_socket_operator.catalogue.paths import forward_target
from docker_socket_operator.catalogue.types import RequestTarget
from docker_socket_operator.proxy.http1 import (
    HEAD_LIMIT,
    HOP_BY_HOP,
    HttpError,
    RequestHead,
    UpstreamProtocolError,
)
from docker_socket_operator.proxy.stream import Stream
from docker_socket_operator.proxy.watchdog import HeadWatch

_PARAM = re.compile(r"\{([a-z_]+)\}")


async def read_request_head(reader: Stream, watch: HeadWatch | None = None) -> bytes | None:
    """Bytes up to and including the blank line (a bare-LF blank line ends it too, so that
    such a request is answered 400 at once rather than waited on). None on EOF before a
    request begins. With `watch` (armed with the idle timeout of a kept-alive connection),
    the rest of the head is due within the head timeout of its first line."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request header fields too large") from None
    if line in (b"\r\n", b"\n"):
        raise HttpError(400, "malformed request: empty request line")
    # Usually the whole head came in one read: take it in one step. The head ends at the
    # first empty line, CRLF or bare LF, exactly where the line-by-line loop below stops.
    rest = _head_rest(reader)
    if rest > 0:
        if len(line) + rest > HEAD_LIMIT:
            raise HttpError(431, "request header fields too large")
        return line + reader.consume(rest)
    if watch is not None:  # only a head that did not come in one piece needs the deadline moved
        watch.head_begun(reader)
    parts = [line]
    total = len(line)
    try:
        while True:
            line = await reader.readuntil(b"\n")
            total += len(line)
            if total > HEAD_LIMIT:
                raise HttpError(431, "request header fields too large")
            parts.append(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
    except asyncio.IncompleteReadError:
        raise HttpError(400, "connection closed inside the request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request header fields too large") from None


def _head_rest(reader: Stream) -> int:
    """How many buffered bytes complete the head after its first line (which ended in LF),
    or 0 when its end is not buffered yet."""
    buf = reader.buffer
    if buf[:1] == b"\n":
        return 1
    if buf[:2] == b"\r\n":
        return 2
    crlf = buf.find(b"\n\r\n")
    lf = buf.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 2
    return crlf + 3 if crlf >= 0 else 0


def rewrite_path(template: str, params: Mapping[str, str], container_id: str) -> str:
    return _PARAM.sub(lambda m: container_id if m[1] == "id" else params[m[1]], template)


def upstream_request_head(
    req: RequestHead,
    target: RequestTarget,
    api_path: str | None,
    body_len: int | None,
    hijack: bool,
) -> bytes:
    parts = [
        f"{req.method} {forward_target(target, api_path)} {req.version}\r\nHost: docker\r\n".encode(
            "ascii"
        )
    ]
    for name, line in req.fields:
        if name not in HOP_BY_HOP:
            parts.append(line)
            parts.append(b"\r\n")
    if body_len is not None:
        parts.append(b"Content-Length: %d\r\n" % body_len)
    elif req.chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    elif req.content_length is not None:
        parts.append(b"Content-Length: %d\r\n" % req.content_length)
    if hijack and req.upgrade_tcp:
        parts.append(b"Connection: Upgrade\r\nUpgrade: tcp\r\n")
    elif hijack and req.upgrade_websocket:
        parts.append(b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def decode_json(raw: bytes) -> Any:
    """A daemon's JSON answer (a list or inspect the proxy rewrites or decides on). orjson: a
    few times faster than json on every scoped or redacted call. It reads the JSON a Go
    daemon writes exactly as json does; it refuses lone surrogate escapes (which Go never
    writes) and reads integers beyond 64 bits (which no daemon field holds) as floats. Request
    bodies are read by policy/body.py, as dockerd reads them."""
    try:
        return orjson.loads(raw)
    except ValueError:
        raise UpstreamProtocolError("daemon answered with invalid JSON") from None


def json_bytes(doc: Any) -> bytes:
    """A rewritten answer: compact UTF-8 JSON and a newline, as dockerd writes its own."""
    return orjson.dumps(doc) + b"\n"
