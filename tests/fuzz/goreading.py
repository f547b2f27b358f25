"""How the daemons (Go programs) read a request, written independently of the proxy's own parsers
so that the oracle is a second opinion, not the proxy's code checking itself.

- JSON bodies: encoding/json matches object keys to struct fields through foldName (ASCII
  upper-casing, non-ASCII runes through ToUpper(ToLower(r)), so U+017F is 'S' and U+212A is 'K');
  a repeated key decodes again into the same field: objects merge, other values are replaced, and
  a `null` leaves a non-pointer field as it was (we always keep the earlier value: the reading with
  more power wins when Go's type is unknown here).
- Query: url.ParseQuery ('&' only, a pair holding ';' is dropped, '+' is a space, a bad escape
  drops the pair); dockerd's Form.Get takes the first value, Podman's decoder the last.
- Path: url.Parse percent-decodes it; the routers strip a version prefix.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from docker_socket_operator.policy.body import DockerObject

Engine = Literal["docker", "podman"]
# What the fake daemon says it is: "unknown" answers /_ping and /version like neither engine
# (the proxy must then apply the strictest dialect, and the oracle checks both readings).
Flavour = Literal["docker", "podman", "unknown"]

# dockerd: "/v{version:[0-9.]+}"; Podman's compat and libpod routers: "/v{version:[0-9][0-9A-Za-z.-]*}"
_VERSION = {
    "docker": re.compile(r"/v[0-9.]+(?=/)"),
    "podman": re.compile(r"/v[0-9][0-9A-Za-z.\-]*(?=/)"),
}


class Unreadable(ValueError):
    """The daemon would refuse this (400) before acting on it."""


def go_fold(key: str) -> str:
    """A key as encoding/json compares it with a field name, lower-cased for DockerObject."""
    out: list[str] = []
    for ch in key:
        if ch.isascii():
            out.append(ch.upper())
            continue
        low = ch.lower()
        up = low.upper() if len(low) == 1 else ch
        out.append(up if len(up) == 1 else ch)
    folded = "".join(out)
    return folded.lower() if folded.isascii() else folded


def _merge(old: Any, new: Any) -> Any:
    if new is None and old is not None:
        return old
    if isinstance(old, DockerObject) and isinstance(new, DockerObject):
        merged = DockerObject()
        for k, v in old.items():
            merged[k] = v
            merged.exact[k] = old.exact.get(k, k)
        for k, v in new.items():
            merged[k] = _merge(merged.get(k), v)
            merged.exact[k] = new.exact.get(k, k)
        return merged
    return new


def _go_object(pairs: list[tuple[str, Any]]) -> DockerObject:
    obj = DockerObject()
    for key, value in pairs:
        folded = go_fold(key)
        obj[folded] = _merge(obj.get(folded), value)
        obj.exact[folded] = key
    return obj


def go_json(raw: bytes) -> Any:
    """The body as the daemon's struct would hold it (folded keys, duplicates merged)."""
    if not raw.strip(b" \t\r\n"):
        return None
    try:
        return json.loads(raw.decode("utf-8", "replace"), object_pairs_hook=_go_object)
    except (ValueError, RecursionError):
        raise Unreadable("body is not JSON") from None


def _unescape(text: str, plus_is_space: bool) -> str:
    if plus_is_space:
        text = text.replace("+", " ")
    out = bytearray()
    i = 0
    raw = text.encode("latin-1", "replace")
    while i < len(raw):
        c = raw[i]
        if c == 0x25:
            hexpart = raw[i + 1 : i + 3]
            if len(hexpart) < 2 or not all(chr(h) in "0123456789abcdefABCDEF" for h in hexpart):
                raise Unreadable("bad percent escape")
            out.append(int(hexpart, 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "replace")


def query_values(raw: str) -> list[tuple[str, str]]:
    """url.ParseQuery: every (key, value) pair, in order."""
    values: list[tuple[str, str]] = []
    for pair in raw.split("&"):
        if ";" in pair or not pair:
            continue
        key, _, value = pair.partition("=")
        try:
            k, v = _unescape(key, True), _unescape(value, True)
        except Unreadable:
            continue
        values.append((k, v))
    return values


def query_key(key: str, engine: Engine) -> str:
    """The parameter a key reaches: exact on dockerd; Podman's schema decoder ignores case and
    tries a '.' path joined with '_' (`PS.Args` reaches `ps_args`)."""
    return key if engine == "docker" else key.lower().replace(".", "_")


def query_params(values: list[tuple[str, str]], engine: Engine) -> dict[str, list[str]]:
    """Every value each parameter gets, in order, keyed as the engine matches names."""
    merged: dict[str, list[str]] = {}
    for key, value in values:
        merged.setdefault(query_key(key, engine), []).append(value)
    return merged


def query_reading(values: list[tuple[str, str]], engine: Engine) -> dict[str, str]:
    """One value per parameter: dockerd's Form.Get takes the first, Podman the last."""
    return {
        k: v[0] if engine == "docker" else v[-1] for k, v in query_params(values, engine).items()
    }


def split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query.partition("#")[0]


def decoded_path(raw_path: str) -> str:
    """url.Parse's Path (a bad escape is a 400)."""
    return _unescape(raw_path, False)


def api_path(path: str, engine: Engine) -> str:
    """The path the router matches after taking off a version prefix."""
    m = _VERSION[engine].match(path)
    return path[m.end() :] if m else path
