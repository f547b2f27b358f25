"""The operation catalogue at run time: load operations.json once, match (method, path) per request.

Matching runs on every request, so routes are indexed by (method, first path segment) and each
bucket is tried in a fixed order: literal routes first (`/images/get` is images.get-all, while
`/images/x/get` is images.get), then parameterised templates, most literal text first.

`{id}`-style parameters match exactly one segment. Image, plugin and distribution `{name}`s may
contain '/' (`registry.example:5000/ci/x:1`), as dockerd's own `{name:.*}` routes allow; every such
template ends in a literal suffix (or is the only route of its method), so the greedy match is
unambiguous. Paths are expected already decoded and canonical (see paths.parse_target).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from typing import Any

from docker_socket_operator.catalogue.types import MatchedOperation, Operation

# First segments whose {name} parameter is a reference that may contain '/'.
MULTI_SEGMENT_NAMES = frozenset({"images", "plugins", "distribution"})

_PARAM = re.compile(r"\{([a-z_]+)\}")


def _load_operations() -> tuple[Operation, ...]:
    text = resources.files("docker_socket_operator.catalogue").joinpath("operations.json")
    doc: Mapping[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return tuple(Operation(**entry) for entry in doc["operations"])


ALL_OPERATIONS: tuple[Operation, ...] = _load_operations()
OPERATION_NAMES: frozenset[str] = frozenset(op.name for op in ALL_OPERATIONS)


def _first_segment(path: str) -> str:
    # "/containers/x/json" -> "containers"; "/_ping" -> "_ping"; "/" -> ""
    end = path.find("/", 1)
    return path[1:] if end < 0 else path[1:end]


@dataclass(frozen=True, slots=True)
class _Route:
    op: Operation
    pattern: re.Pattern[str]


def _template_regex(template: str) -> re.Pattern[str]:
    greedy = _first_segment(template) in MULTI_SEGMENT_NAMES
    parts: list[str] = []
    pos = 0
    for m in _PARAM.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        one_or_more = ".+" if greedy and m.group(1) == "name" else "[^/]+"
        parts.append(f"(?P<{m.group(1)}>{one_or_more})")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


def _literal_length(template: str) -> int:
    return len(_PARAM.sub("", template))


def _build_index(
    ops: tuple[Operation, ...],
) -> tuple[dict[tuple[str, str], Operation], dict[tuple[str, str], tuple[_Route, ...]]]:
    literal: dict[tuple[str, str], Operation] = {}
    buckets: dict[tuple[str, str], list[Operation]] = {}
    for op in ops:
        if "{" not in op.template:
            literal[(op.method, op.template)] = op
        else:
            buckets.setdefault((op.method, _first_segment(op.template)), []).append(op)
    templated = {
        key: tuple(
            _Route(op, _template_regex(op.template))
            for op in sorted(bucket, key=lambda o: (-_literal_length(o.template), o.template))
        )
        for key, bucket in buckets.items()
    }
    return literal, templated


_LITERAL, _TEMPLATED = _build_index(ALL_OPERATIONS)


def match_operation(method: str, api_path: str) -> MatchedOperation | None:
    """The catalogue operation for a decoded, version-less path, or None (the proxy denies).

    Method is matched exactly as sent: HEAD is its own method (only /_ping and the archive stat
    have HEAD routes), lower-case methods are not dockerd's methods and match nothing."""
    op = _LITERAL.get((method, api_path))
    if op is not None:
        return MatchedOperation(op, {})
    for route in _TEMPLATED.get((method, _first_segment(api_path)), ()):
        m = route.pattern.fullmatch(api_path)
        if m is not None:
            return MatchedOperation(route.op, m.groupdict())
    return None


def operations_named(pattern: str) -> list[Operation]:
    """Operations whose name matches a glob ("containers.*", "exec.start"), in catalogue order."""
    return [op for op in ALL_OPERATIONS if fnmatchcase(op.name, pattern)]
