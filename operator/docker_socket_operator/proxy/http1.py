"""Strict HTTP/1.1 parsing and framing (pure: bytes in, values out; no I/O).

The proxy decides on what it parsed and dockerd acts on what *it* parses, so any byte sequence
the two could read differently is refused (400 and close) instead of being interpreted: bare LF
or CR, obs-fold, odd header names, duplicate or non-numeric Content-Length, Content-Length with
Transfer-Encoding, codings other than `chunked`, HTTP/2 and h2c, method-override headers.

One reading: the proxy decides on one value of each header and query parameter, so a request
that repeats either is refused. Go's `Header.Get` and `url.Values.Get` take the first copy,
Podman's query decoder (gorilla/schema) the last and matches names case-insensitively, and
dockerd's `ParseForm` merges a form-encoded body into the query; each would be a second reading.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from urllib.parse import parse_qsl

HEAD_LIMIT = 64 * 1024  # request head cap (431 above it)
MAX_HEADER_LINES = 128

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})

# Headers that apply to one hop only, or that the proxy regenerates when it forwards.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"expect",
        b"host",
        b"content-length",
        b"http2-settings",
    }
)
# Repeats the daemon never sees (the proxy drops these hop-by-hop headers and writes its own)
# and the proxy reads as a list. Every other header may appear once.
REPEATABLE_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer"}
)
_METHOD_OVERRIDE = frozenset({b"x-http-method-override", b"x-http-method", b"x-method-override"})
# Request headers the parser acts on; all others are only carried along.
_SPECIAL = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
        b"connection",
        b"expect",
        b"host",
        b"content-type",
        *_METHOD_OVERRIDE,
    }
)

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*")
_HEADER_BLOCK = re.compile(rb"(?:" + _TOKEN + rb":[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class HttpError(Exception):
    """A request the proxy answers itself, in Docker's JSON error shape."""

    def __init__(self, status: int, message: str, *, close: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def json_error(status: int, message: str, *, close: bool = False) -> bytes:
    """A complete response `{"message": ...}` as dockerd writes its errors."""
    body = json.dumps({"message": message}).encode() + b"\n"
    return json_response(status, body, close=close)


def json_response(status: int, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_reason(status)}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode("ascii") + body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request head. Frozen: one parse of a head's bytes may serve every request that
    sends the same bytes (proxy/facts.py keeps a few)."""

    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    # (lower-case name, the raw header line without CRLF) in order, for forwarding verbatim
    fields: tuple[tuple[bytes, bytes], ...] = ()
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    upgrade_tcp: bool = False
    upgrade_websocket: bool = False  # only containers.attach-websocket takes it (server.py)
    expect_continue: bool = False
    content_type: str = ""

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


def _bad(message: str) -> HttpError:
    return HttpError(400, message)


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head that ends with its blank line (CRLF CRLF, or a bare LF that is
    then refused). Raises HttpError: 400 for anything ambiguous, 405 for other methods."""
    if len(head) > HEAD_LIMIT:
        raise HttpError(431, "request header fields too large")
    first = head.find(b"\r\n")
    if first < 0 or not head.endswith(b"\r\n\r\n"):
        raise _diagnose(head)
    # Sliced only once the head is known to end with CRLF CRLF after its first line: mypyc's
    # compiled bytes slice fails on a start past the end where Python gives b"".
    block = head[first + 2 : -2]
    # One regex validates every header line at once (token name, colon, no control characters,
    # CRLF endings, no folding); only a failing head is walked line by line for the reason.
    if _HEADER_BLOCK.fullmatch(block) is None:
        raise _diagnose(head)
    method, target, version = _parse_request_line(head[:first])
    lines = block.split(b"\r\n")
    lines.pop()  # the block ends with CRLF
    if len(lines) > MAX_HEADER_LINES:
        raise HttpError(431, "too many header fields")
    fields = []
    connection = b""
    seen_host = False
    content_length: int | None = None
    chunked = upgrade_tcp = upgrade_websocket = expect_continue = False
    content_type = ""
    special = _SPECIAL
    for line in lines:
        name, _, value = line.partition(b":")
        lname = name.lower()
        fields.append((lname, line))
        if lname not in special:
            continue
        value = value.strip(b" \t")
        if lname == b"content-length":
            if content_length is not None:
                raise _bad("repeated header Content-Length: send each header once")
            if not value.isdigit() or len(value) > 18:
                raise _bad("invalid Content-Length")
            content_length = int(value)
        elif lname == b"transfer-encoding":
            if chunked:
                raise _bad("repeated header Transfer-Encoding: send each header once")
            if value.lower() != b"chunked":
                raise _bad("unsupported Transfer-Encoding (only 'chunked')")
            chunked = True
        elif lname == b"upgrade":
            if upgrade_tcp or upgrade_websocket:
                raise _bad("repeated header Upgrade: send each header once")
            if value.lower() == b"websocket":
                upgrade_websocket = True
            elif value.lower() == b"tcp":
                upgrade_tcp = True
            else:
                raise _bad(
                    f"unsupported Upgrade {value.decode('latin-1')!r} (Docker's 'tcp' or 'websocket')"
                )
        elif lname == b"http2-settings":
            raise _bad("HTTP/2 (h2c) is not supported")
        elif lname in _METHOD_OVERRIDE:
            raise _bad(f"method override header {name.decode('ascii')} is not allowed")
        elif lname == b"connection":
            connection += b"," + value.lower()
        elif lname == b"expect":
            if value.lower() != b"100-continue":
                raise HttpError(417, "unsupported Expect")
            expect_continue = True
        elif lname == b"host":
            if seen_host:
                raise _bad("repeated header Host: send each header once")
            seen_host = True
        elif lname == b"content-type":
            if not value.isascii():
                # Go lower-cases and trims with Unicode rules ("İ" becomes "i"): keep to ASCII,
                # where the proxy's reading of the media type is Go's.
                raise _bad("non-ASCII Content-Type")
            content_type = value.decode("ascii")
    if len(fields) > 1 and len({name for name, _ in fields}) != len(fields):
        _check_repeats(fields)
    if chunked and content_length is not None:
        raise _bad("both Content-Length and Transfer-Encoding")
    keep_alive = True
    if version == "HTTP/1.0":
        if chunked:
            raise _bad("Transfer-Encoding in an HTTP/1.0 request")
        keep_alive = False  # 1.0 keep-alive is not worth its ambiguity
    elif connection:
        keep_alive = b"close" not in {t.strip() for t in connection.split(b",")}
    if method not in ALLOWED_METHODS:
        raise HttpError(405, f"method {method} is not allowed")
    return RequestHead(
        method,
        target,
        version,
        tuple(fields),
        content_length,
        chunked,
        keep_alive,
        upgrade_tcp,
        upgrade_websocket,
        expect_continue,
        content_type,
    )


def _check_repeats(fields: list[tuple[bytes, bytes]]) -> None:
    seen: set[bytes] = set()
    for lname, line in fields:
        if lname in seen and lname not in REPEATABLE_HEADERS:
            name = line.partition(b":")[0].decode("ascii")
            raise _bad(f"repeated header {name}: send each header once")
        seen.add(lname)


def _diagnose(head: bytes) -> HttpError:
    """The precise reason a head failed the fast validation."""
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf:
        return _bad("malformed request: bare LF line ending")
    if head.count(b"\r") != crlf:
        return _bad("malformed request: bare CR")
    if not head.endswith(b"\r\n\r\n"):
        return _bad("malformed request: incomplete head")
    lines = head[:-4].split(b"\r\n")
    _parse_request_line(lines[0])
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            return _bad("malformed header: obsolete line folding")
        m = FIELD.fullmatch(line)
        if m is None:
            return _bad("malformed header line")
        if BAD_VALUE.search(m.group(2)) is not None:
            return _bad("malformed header: control character in value")
    return _bad("malformed request head")


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    """Method, target and version of a request line."""
    if line.startswith(b"PRI * HTTP/2"):
        raise _bad("HTTP/2 is not supported")
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        raise _bad("malformed request line")
    method, target, major, minor = m.groups()
    if major != b"1" or minor not in (b"0", b"1"):
        raise _bad(f"unsupported protocol HTTP/{major.decode()}.{minor.decode()}")
    return (
        method.decode("ascii"),
        target.decode("ascii"),
        "HTTP/1.1" if minor == b"1" else "HTTP/1.0",
    )


# Media types Go's ParseForm / ParseMultipartForm read into r.Form (dockerd's parameters).
_FORM_MEDIA_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def is_form_body(content_type: str) -> bool:
    """Go's ParseForm reads url-encoded bodies into r.Form *ahead of* the query, so such a body
    could change parameters the policy read from the query: refuse it. The media type is found
    as Go's mime.ParseMediaType finds it: up to ';', trimmed, lower-cased, whatever follows
    (even invalid parameters, whose error dockerd ignores). Content-Type is ASCII here."""
    media = content_type.split(";", 1)[0].strip(" \t").lower()
    return media in _FORM_MEDIA_TYPES


# Docker Engine API query parameters (all versions in docs) spelled with capitals; every other
# parameter name is lower-case. Podman matches names case-insensitively, dockerd exactly.
MIXED_CASE_PARAMS = frozenset(
    {
        "copyUIDGID",
        "detachKeys",
        "fromImage",
        "fromSrc",
        "insertDefaults",
        "noOverwriteDirNonDir",
        "registryAuthFrom",
        "rotateManagerToken",
        "rotateManagerUnlockKey",
        "rotateWorkerToken",
    }
)


_SPELLING = {name.lower(): name for name in MIXED_CASE_PARAMS}


def _fold(key: str) -> str:
    """The name Podman's decoder matches a key by: case-insensitive, and a '.' path in a key
    is tried joined with '_' (so `ps.args` can reach `ps_args`)."""
    return key.lower().replace(".", "_")


def parse_query(raw: str, *, libpod: bool = False) -> dict[str, str]:
    """Query parameters as both daemons see them, or 400. Go splits on '&' only and refuses
    ';' (dockerd answers 400; Podman silently drops the pair), '+' is a space, a bad escape is
    an error; Podman matches names ignoring case. So a name may appear once (after decoding
    and case folding), must be ASCII, and on Docker API routes must be spelled as the API
    spells it (lower-case, or one of MIXED_CASE_PARAMS), so that dockerd and Podman read the
    same parameter the proxy read. Libpod routes (Podman only) skip the spelling rule."""
    if not raw:
        return {}
    if "%" not in raw and "+" not in raw and ";" not in raw:
        pairs = []
        for pair in raw.split("&"):
            if pair:
                key, _, value = pair.partition("=")
                pairs.append((key, value))
    else:
        if ";" in raw:
            raise _bad("query contains ';'")
        if _BAD_PERCENT.search(raw) is not None:
            raise _bad("invalid percent-encoding in query")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=1000)
        except (ValueError, UnicodeDecodeError):
            raise _bad("malformed query") from None
    _check_query_names(pairs, libpod)
    return dict(pairs)


def _check_query_names(pairs: list[tuple[str, str]], libpod: bool) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if not key.isascii():
            raise _bad(f"query parameter name {key!r} is not ASCII")
        folded = _fold(key)
        if folded in seen:
            raise _bad(f"repeated query parameter {key!r}: send each parameter once")
        seen.add(folded)
        if not libpod and key != _SPELLING.get(folded, folded):
            raise _bad(f"query parameter {key!r} is not spelled as the Docker API spells it")


# -- responses from the daemon ----------------------------------------------------------------


class Framing(Enum):
    NONE = "none"  # HEAD, 1xx, 204, 304
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"  # until the daemon closes (also Docker's raw-stream 200 hijack)


class UpstreamProtocolError(Exception):
    """The daemon's response could not be framed: the proxy answers 502 and drops both ends."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    raw: bytes  # the whole head as received, relayed verbatim when the body is not rewritten
    framing: Framing
    content_length: int = 0
    content_type: str = ""
    reusable: bool = True  # the daemon keeps the connection open after this response
    # The head without its framing lines and final CRLF, worked out with the parse (which is
    # kept for the daemon's repeated heads) rather than per rewritten answer.
    unframed: bytes | None = None

    @property
    def raw_stream(self) -> bool:
        return self.content_type.startswith(
            ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")
        )

    def rebuilt(self, content_length: int) -> bytes:
        """The head with its framing replaced by a Content-Length (for rewritten bodies)."""
        kept = self.unframed if self.unframed is not None else _unframed(self.raw)
        return kept + b"Content-Length: %d\r\n\r\n" % content_length


def _unframed(head: bytes) -> bytes:
    return _FRAMING_LINE.sub(b"", head[:-2])


# A Content-Length or Transfer-Encoding line of a head (names in any case, as Go reads them).
_FRAMING_LINE = re.compile(
    rb"(?<=\r\n)[ \t]*(?i:content-length|transfer-encoding)[ \t]*:[^\r]*\r\n"
)


# The response fields that decide framing, found in one scan of the lower-cased head.
_FRAMING_FIELDS = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|content-type):([^\r]*)"
)


RESPONSE_READINGS_KEPT = 256
_response_readings: dict[tuple[bytes, bool], ResponseHead] = {}


def parse_response_head(head: bytes, request_method: str) -> ResponseHead:
    """Parse the daemon's response head (ending in CRLF CRLF) and work out its body framing.
    The daemon is trusted to be well-formed, but what decides framing is checked strictly.
    A parse is kept for the same bytes (the daemon repeats its heads but for the Date line);
    ResponseHead is frozen, so a kept one is shared."""
    key = (head, request_method == "HEAD")
    resp = _response_readings.get(key)
    if resp is None:
        resp = _parse_response_head(head, request_method)
        if len(_response_readings) >= RESPONSE_READINGS_KEPT:
            _response_readings.clear()
        if len(head) <= 4096:
            _response_readings[key] = resp
    return resp


def _parse_response_head(head: bytes, request_method: str) -> ResponseHead:
    if (
        head.count(b"\n") != head.count(b"\r\n")
        or _STATUS_LINE.fullmatch(head, 0, head.find(b"\r\n")) is None
    ):
        raise UpstreamProtocolError(f"malformed response head {head[:80]!r}")
    status = int(head[9:12])
    keep_alive = head[7] == 0x31  # HTTP/1.1
    length = coding = connection = ctype = None
    for name, value in _FRAMING_FIELDS.findall(head.lower()):
        value = value.strip(b" \t")
        if name == b"content-length":
            if length is not None:
                raise UpstreamProtocolError("repeated content-length in response")
            length = value
        elif name == b"transfer-encoding":
            if coding is not None:
                raise UpstreamProtocolError("repeated transfer-encoding in response")
            coding = value
        elif name == b"connection":
            if connection is not None:
                raise UpstreamProtocolError("repeated connection in response")
            connection = value
        else:
            if ctype is not None:
                raise UpstreamProtocolError("repeated content-type in response")
            ctype = value
    framing = Framing.CLOSE
    content_length = 0
    if connection is not None:
        tokens = {t.strip() for t in connection.split(b",")}
        if b"close" in tokens:
            keep_alive = False
        elif b"keep-alive" in tokens:
            keep_alive = True
    if coding is not None and coding != b"chunked":
        raise UpstreamProtocolError("unsupported Transfer-Encoding in response")
    if length is not None and not length.isdigit():
        raise UpstreamProtocolError("invalid Content-Length in response")
    if request_method == "HEAD" or status < 200 or status in (204, 304):
        framing = Framing.NONE
    elif coding is not None:
        framing = Framing.CHUNKED
    elif length is not None:
        framing = Framing.LENGTH
        content_length = int(length)
    return ResponseHead(
        status,
        head,
        framing,
        content_length,
        "" if ctype is None else ctype.decode("latin-1"),
        keep_alive and framing is not Framing.CLOSE and status != 101,
        _unframed(head),
    )
