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
    request line is complete. With `watch` (armed with the idle timeout of a kept-alive
    connection), the rest of the head is due within the head timeout of its first line."""
    begun = False
    line_end = -1
    scanned = 0  # bytes already searched: a head sent in small pieces is scanned once
    while True:
        buf = reader.buffer
        if line_end < 0:
            line_end = buf.find(b"\n", scanned)
        if line_end >= 0:
            size = head_size(buf, line_end, max(line_end, scanned - 2))
            if size:
                return reader.consume(size)
            if watch is not None and not begun:
                begun = True
                watch.head_begun(reader)
        elif len(buf) > HEAD_LIMIT:
            raise HttpError(431, "request header fields too large")
        scanned = len(buf)
        try:
            await reader.wait_more()
        except asyncio.IncompleteReadError:
            if line_end < 0:
                return None
            raise HttpError(400, "connection closed inside the request head") from None


def head_size(buf: bytearray, line_end: int, start: int) -> int:
    """The length of the request head at the start of `buf`, whose first line ends (LF) at
    `line_end`; 0 while its blank line (CRLF or bare LF) is not buffered yet. The blank line
    is looked for from `start` (before it, `buf` was searched already)."""
    if line_end == 0 or (line_end == 1 and buf[0] == 0x0D):
        raise HttpError(400, "malformed request: empty request line")
    crlf = buf.find(b"\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        size = lf + 2
    elif crlf >= 0:
        size = crlf + 3
    elif len(buf) > HEAD_LIMIT:
        raise HttpError(431, "request header fields too large")
    else:
        return 0
    if size > HEAD_LIMIT:
        raise HttpError(431, "request header fields too large")
    return size


def rewrite_path(template: str, params: Mapping[str, str], container_id: str) -> str:
    parts = _TEMPLATE_PARTS.get(template)
    if parts is None:  # the catalogue's templates: a bounded set, split once each
        parts = _TEMPLATE_PARTS[template] = tuple(_PARAM.split(template))
    out = []
    for i, part in enumerate(parts):  # literal text at even indexes, parameter names at odd
        out.append(part if i % 2 == 0 else container_id if part == "id" else params[part])
    return "".join(out)


_TEMPLATE_PARTS: dict[str, tuple[str, ...]] = {}


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
    return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
