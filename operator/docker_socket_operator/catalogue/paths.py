"""Request-target parsing: one canonical path per request, or a 400.

The policy decides on the path this module returns and the proxy forwards exactly that path
(re-encoded), so the daemon can never route a request differently from how it was decided.
Anything that could be read two ways is refused rather than cleaned up: a proxy that "fixes"
`/containers/x/../../images/json` and a daemon that would have fixed it differently (or not at
all) is the classic way through a path filter.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from docker_socket_operator.catalogue.types import BadTarget, RequestTarget

# dockerd routes "/v{version:[0-9.]+}/..."; we accept the well-formed subset (/v1, /v1.41,
# Podman's /v4.0.0) and leave anything else in the path, where it matches no operation.
_VERSION_PREFIX = re.compile(r"/v[0-9]+(?:\.[0-9]+)*(?=/)")

# RFC 3986 pchar minus '%' (re-encoded) : unreserved (quote keeps these), sub-delims, ':' and '@'
# so image references like "registry:5000/x@sha256:..." are forwarded as clients send them.
_PATH_SAFE = "/!$&'()*+,;=:@"

_HEX = frozenset("0123456789abcdefABCDEF")

# The common target in one regex: a path of unreserved/_PATH_SAFE characters (no '%', so
# nothing to decode) whose segments are neither empty nor '.'/'..', and a query of visible
# ASCII without '#'. What it accepts, the checks below accept unchanged; anything else takes
# the character-by-character path for its verdict (or its percent-decoding).
_SEGMENT = r"/(?!\.\.?(?:[/?]|\Z))[A-Za-z0-9\-._~!$&'()*+,;=:@]+"
_FAST_TARGET = re.compile(r"((?:" + _SEGMENT + r")+|/)(?:\?([!\"$-~]*))?")
_SAFE_PATH = re.compile(r"[A-Za-z0-9\-._~/!$&'()*+,;=:@]*")


def _check_raw(raw: str) -> None:
    if not raw.startswith("/"):
        # absolute-form (http://host/...), authority-form and asterisk-form ('*') are not what a
        # Docker client sends to a daemon; the proxy is not a forward proxy.
        raise BadTarget("request-target must be an origin-form path starting with '/'")
    for ch in raw:
        if ch <= " " or ch >= "\x7f":
            raise BadTarget("request-target has a space, control or non-ASCII character")
    if "#" in raw:
        raise BadTarget("request-target has a fragment")


def _percent_decode(path: str) -> str:
    if "%" not in path:
        return path
    head, *escaped = path.split("%")
    out = bytearray(head.encode("ascii"))
    for piece in escaped:
        if len(piece) < 2 or piece[0] not in _HEX or piece[1] not in _HEX:
            raise BadTarget("invalid percent-encoding in path")
        byte = int(piece[:2], 16)
        if byte == 0x2F:
            # dockerd decodes %2F before routing, so it would be a separator there while it
            # looks like part of a name here: refuse instead of guessing.
            raise BadTarget("encoded '/' (%2F) in path")
        out.append(byte)
        out += piece[2:].encode("ascii")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarget("percent-encoded path is not UTF-8") from None


def _check_decoded(path: str) -> None:
    for ch in path:
        if ch < " " or "\x7f" <= ch <= "\x9f" or ch == "\\":
            raise BadTarget("path has a control character or backslash")
    if path != "/":
        segments = path.split("/")[1:]
        # '' covers '//' and a trailing '/'; '.' and '..' would be resolved by someone downstream.
        if any(seg in ("", ".", "..") for seg in segments):
            raise BadTarget("path is not canonical")


def checked_path_and_query(raw: str) -> tuple[str, str]:
    """The decoded path and raw query, checked character by character (the general case)."""
    _check_raw(raw)
    raw_path, _, query = raw.partition("?")
    path = _percent_decode(raw_path)
    _check_decoded(path)
    return path, query


def parse_target(raw: str) -> RequestTarget:
    """Split and canonicalise a request-target ("/v1.41/containers/json?all=1").

    Raises BadTarget (the proxy answers 400) for anything but a clean origin-form path."""
    fast = _FAST_TARGET.fullmatch(raw)
    if fast is not None:
        path, query = fast.group(1), fast.group(2) or ""
    else:
        path, query = checked_path_and_query(raw)
    version = ""
    m = _VERSION_PREFIX.match(path)
    if m is not None:
        version = m.group()
        path = path[m.end() :]
    libpod = path == "/libpod" or path.startswith("/libpod/")
    return RequestTarget(version=version, api_path=path, query=query, libpod=libpod)


def forward_target(t: RequestTarget, api_path: str | None = None) -> str:
    """The request-target to send upstream: the original version prefix, the (possibly
    rewritten, e.g. name resolved to a full container ID) path re-encoded, the raw query."""
    path = t.api_path if api_path is None else api_path
    if _SAFE_PATH.fullmatch(path) is None:  # quote() would leave a safe path as it is
        path = quote(path, safe=_PATH_SAFE)
    return f"{t.version}{path}?{t.query}" if t.query else f"{t.version}{path}"
