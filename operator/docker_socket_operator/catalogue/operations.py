"""The operation catalogue at run time: load operations.json once, match (method, path) per request.

Matching runs on every request, so routes are indexed by (method, first path segment) and each
bucket is tried in a fixed order: literal routes first (`/images/get` is images.get-all, while
`/images/x/get` is images.get), then parameterised templates, most literal text first.

A parameter matches exactly one segment unless the operation names it as its `slash_param`:
dockerd routes containers, execs, images, plugins, volumes, networks and distribution as
`{name:.*}`, so a container's legacy link name (`parent/alias`) or an image reference
(`registry.example:5000/ci/x:1`) spans '/'. Within a bucket every such template ends in its own
literal suffix or is the only route of its method, except DELETE `/containers/{id:.*}`, which
the one-segment checkpoint delete precedes here as it does in dockerd (its checkpoint router is
registered first). Paths are expected already decoded and canonical (see paths.parse_target):
no empty, '.' or '..' segment can reach a parameter.
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


def _template_regex(template: str, slash_param: str = "") -> re.Pattern[str]:
    parts: list[str] = []
    pos = 0
    for m in _PARAM.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        one_or_more = ".+" if m.group(1) == slash_param else "[^/]+"
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
            _Route(op, _template_regex(op.template, op.slash_param))
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


# Operations that hand the node to whoever calls them, through what the proxy cannot check: a
# plugin runs as root with the mounts, devices and capabilities its manifest asks for (pull,
# create from a local tar, set, upgrade, enable), a service's tasks are containers whose spec
# the create checks never see, joining or founding a swarm puts the node under a manager's
# control, and BuildKit's /grpc runs build steps (host network included) outside the build
# route's query checks. A glob never allows them: only their own name does (policy/compile.py).
UNCHECKED_HOST_POWER = frozenset(
    {
        "plugins.pull",
        "plugins.create",
        "plugins.set",
        "plugins.upgrade",
        "plugins.enable",
        "services.create",
        "services.update",
        "swarm.init",
        "swarm.join",
        "build.grpc",
    }
)


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def operations_named(pattern: str) -> list[Operation]:
    """Operations whose name matches a glob ("containers.*", "exec.start"), in catalogue order."""
    return [op for op in ALL_OPERATIONS if fnmatchcase(op.name, pattern)]


def query_flag(query: Mapping[str, str], key: str) -> bool:
    """A boolean query parameter as dockerd's httputils.BoolValue reads it."""
    return query.get(key, "").strip().lower() not in ("", "0", "no", "false", "none")


def link_parent(op: Operation, params: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The parent container of a legacy-link removal, or None for any other request.

    `DELETE /containers/{parent}/{alias}?link=1` changes the parent (its link to alias goes);
    dockerd finds the link by that name only (`parent` must be a name, not an ID), so such a
    request is decided on the parent and forwarded by name. Without `link` the same path
    deletes the container the link points to, an ordinary containers.delete."""
    if op.name != "containers.delete" or not query_flag(query, "link"):
        return None
    parent, slash, alias = params.get("id", "").rpartition("/")
    return parent if slash and parent and alias else None
