"""Request bodies read the way dockerd reads them (the checks live in constraints.py).

dockerd decodes bodies with Go's encoding/json into structs: object keys match struct fields
case-insensitively (Go's simple case folding: U+017F long s is 's' and U+212A Kelvin is 'k', but
the ligature U+FB01 is not "fi" and dotless U+0131 is not 'i', so Python's str.casefold would be
wrong both ways: checked against Go 1.2x), and unknown keys are ignored. A proxy that reads keys
differently from dockerd is bypassed with
`{"privileged": true}` or `{"Privileged": false, "privileged": true}`.

Duplicate keys (after folding) are refused (BadBody, 400) instead of "last one wins": Go does
not replace a duplicated object, it merges into the struct it already filled
(`{"HostConfig": {"Privileged": true}, "HostConfig": {}}` stays privileged), and a duplicated
`null` leaves a scalar as it was. No Docker client sends duplicate keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from docker_socket_operator.policy.types import BadBody

# The only non-ASCII runes whose Go fold class holds an ASCII letter (see encoding/json/fold.go).
_NON_ASCII_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "k"})


def fold_key(key: str) -> str:
    """A JSON object key as Go's encoding/json compares it with a struct field name."""
    if key.isascii():
        return key.lower()
    return "".join(c.lower() if c.isascii() else c for c in key.translate(_NON_ASCII_FOLDS))


class DockerObject(dict[str, Any]):
    """A decoded JSON object keyed by folded key (as struct fields see it). `exact` keeps the keys
    as sent, for fields that are Go maps (Labels, DriverOpts, Sysctls), whose keys are not folded."""

    __slots__ = ("exact",)

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        self.exact: dict[str, str] = {}
        for key, value in pairs:
            folded = fold_key(key)
            if folded in self:
                raise BadBody(f"duplicate key {key!r} in a JSON object")
            self[folded] = value
            self.exact[folded] = key

    def as_map(self) -> dict[str, Any]:
        """The object as a Go map[string]...: keys exactly as sent."""
        return {self.exact.get(k, k): v for k, v in self.items()}


def _no_constant(name: str) -> Any:
    raise BadBody(f"{name} is not JSON")


def decode_docker_json(raw: bytes) -> Any:
    """Decode a request body as dockerd would see it: a DockerObject (folded keys), or None for an
    empty body or `null`. Anything dockerd could read differently raises BadBody."""
    if not raw.strip(b" \t\r\n"):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("body is not valid UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=DockerObject, parse_constant=_no_constant)
    except BadBody:
        raise
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"body is not valid JSON: {exc}") from None
    if doc is not None and not isinstance(doc, DockerObject):
        raise BadBody("body must be a JSON object")
    return doc


def as_labels(value: Any) -> dict[str, str]:
    """A Labels field (Go map[string]string) with its keys as sent; non-string values dropped."""
    if isinstance(value, DockerObject):
        return {k: v for k, v in value.as_map().items() if isinstance(v, str)}
    return {}


# --- compiled constraints -------------------------------------------------------------------

# Docker's default capability set: adding one of these changes nothing.
