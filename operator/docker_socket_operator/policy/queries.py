"""Checks on query parameters that carry host power, per operation (bodies: constraints.py).

`POST /build` takes its options as query parameters, and both engines run the build's RUN steps
with what they say: `networkmode=host` runs them in the node's network namespace (checked on
dockerd and Podman), dockerd reads `cgroupparent`, `isolation`, `ulimits`; Podman's handler
(shared with libpod) reads `addcaps`, `devices`, `nsoptions` (host namespaces), `securityopt`,
`secrets` and `additionalbuildcontexts` (host files), `volume`, `rusagelogfile` (writes a host
file), `idmappingoptions`... and `remote` makes the daemon fetch a URL or clone a repository from
the node's network. So a build accepts only the parameters the Engine API documents that change
nothing outside the build container, and `dockerfile` must stay inside the context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from docker_socket_operator.policy.constraints import canonical_host_path
from docker_socket_operator.policy.sources import images_create_reason

_BUILD_PARAMS = frozenset(
    {"dockerfile", "t", "extrahosts", "q", "nocache", "cachefrom", "pull", "rm", "forcerm",
     "memory", "memswap", "cpushares", "cpusetcpus", "cpuperiod", "cpuquota", "buildargs",
     "shmsize", "squash", "labels", "networkmode", "platform", "target", "version", "session",
     "buildid", "cpusetmems", "ulimits", "outputs", "cgroupparent", "isolation"}
)  # fmt: skip
_BUILD_NETWORKS = frozenset({"", "default", "bridge", "none"})
# The docker CLI always sends these, empty unless the user set them.
_BUILD_EMPTY_ONLY = {"cgroupparent": frozenset({""}), "isolation": frozenset({"", "default"})}


def build_query_reason(query: Mapping[str, str]) -> str | None:
    """POST /build: only documented, container-local options; the Dockerfile inside the context."""
    for name in query:
        if name not in _BUILD_PARAMS:
            return f"build parameter {name!r} is not allowed (it reaches outside the build)"
    for name, allowed in _BUILD_EMPTY_ONLY.items():
        if query.get(name, "") not in allowed:
            return f"build {name} {query[name]!r} is not allowed"
    mode = query.get("networkmode", "")
    if mode not in _BUILD_NETWORKS:
        return f"build networkmode {mode!r} is not allowed (allowed: bridge, default, none)"
    dockerfile = query.get("dockerfile", "")
    if dockerfile and canonical_host_path("/" + dockerfile) is None:
        return f"build dockerfile {dockerfile!r} is not a clean path inside the context"
    return None


QUERY_CHECKS: Mapping[str, Callable[[Mapping[str, str]], str | None]] = {
    "images.create": images_create_reason,
    "images.build": build_query_reason,
}


def query_reason(operation: str, query: Mapping[str, str]) -> str | None:
    """Why the request's query parameters reach outside the daemon's own stores, or None."""
    check = QUERY_CHECKS.get(operation)
    return None if check is None else check(query)
