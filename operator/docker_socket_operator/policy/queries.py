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

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from docker_socket_operator.catalogue.types import RequestTarget
from docker_socket_operator.policy.constraints import canonical_host_path
from docker_socket_operator.policy.sources import (
    TAG_OR_DIGEST,
    image_reference_reason,
    images_create_reason,
)
from docker_socket_operator.policy.types import BadBody, Engine

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


def start_query_reason(query: Mapping[str, str]) -> str | None:
    """POST /containers/{id}/start: `checkpoint` restores the container from a checkpoint
    directory dockerd finds by joining the name to its checkpoint root, `..` included: on an
    experimental daemon, root CRIU restores from any host directory (one the client wrote
    through its own container's files). Checkpoints are their own operations, never a start's."""
    for name in ("checkpoint", "checkpoint-dir"):
        if query.get(name, ""):
            return f"start parameter {name!r} is not allowed (checkpoints are not a start's)"
    return None


def _name_reason(field: str, value: str | None) -> str | None:
    if not value:
        return None
    return image_reference_reason(value, field)


def _tag_reason(query: Mapping[str, str]) -> str | None:
    tag = query.get("tag")
    if tag and not TAG_OR_DIGEST.fullmatch(tag):
        return f"tag {tag!r} is not a tag or digest"
    return None


def tag_query_reason(query: Mapping[str, str]) -> str | None:
    """POST /images/{name}/tag, POST /commit: the new name is a plain image reference.
    `dir:5000/x` is a registry to dockerd and the host directory `5000/x` to Podman's libimage,
    which a later push (its destination defaults to the name) writes."""
    return _name_reason("repo", query.get("repo")) or _tag_reason(query)


QUERY_CHECKS: Mapping[str, Callable[[Mapping[str, str]], str | None]] = {
    "images.create": images_create_reason,
    "images.build": build_query_reason,
    "images.tag": tag_query_reason,
    "images.commit": tag_query_reason,
    "images.push": _tag_reason,
    "containers.start": start_query_reason,
}

# Podman's compat handlers read parameters the Docker API does not define, on the Docker routes
# themselves (pkg/api/handlers/compat): `POST /containers/{id}/restart?all=1` restarts every
# container on the daemon, `DELETE /networks/{id}?force=1` removes every container attached to
# the network, `POST /images/{name}/push?destination=docker-archive:/path` writes a host file,
# and a future release may read more. So on Podman (and an engine the proxy cannot identify) an
# operation that changes state takes only the parameters the Engine API defines for it (specs
# v1.41-v1.56); dockerd ignores parameters it does not define. images.build has its own list.
DOCKER_WRITE_PARAMS: Mapping[str, frozenset[str]] = {
    "containers.attach": frozenset({"detachKeys", "logs", "stderr", "stdin", "stdout", "stream"}),
    "containers.create": frozenset({"name", "platform"}),
    "containers.delete": frozenset({"force", "link", "v"}),
    "containers.kill": frozenset({"signal"}),
    "containers.pause": frozenset(),
    "containers.prune": frozenset({"filters"}),
    "containers.put-archive": frozenset({"copyUIDGID", "noOverwriteDirNonDir", "path"}),
    "containers.rename": frozenset({"name"}),
    "containers.resize": frozenset({"h", "w"}),
    "containers.restart": frozenset({"signal", "t"}),
    # checkpoint, checkpoint-dir: dockerd's (empty, as start_query_reason allows them)
    "containers.start": frozenset({"detachKeys", "checkpoint", "checkpoint-dir"}),
    "containers.stop": frozenset({"signal", "t"}),
    "containers.unpause": frozenset(),
    "containers.update": frozenset(),
    "containers.wait": frozenset({"condition"}),
    "exec.create": frozenset(),
    "exec.resize": frozenset({"h", "w"}),
    "exec.start": frozenset(),
    "images.commit": frozenset(
        {"author", "changes", "comment", "container", "pause", "repo", "tag"}
    ),
    "images.create": frozenset(
        {"changes", "fromImage", "fromSrc", "message", "platform", "repo", "tag"}
    ),
    "images.delete": frozenset({"force", "noprune", "platforms"}),
    "images.load": frozenset({"platform", "quiet"}),
    "images.prune": frozenset({"filters"}),
    "images.push": frozenset({"platform", "tag"}),
    # docker-py sends `force` on every tag (dockerd and Podman read no such parameter there).
    "images.tag": frozenset({"force", "repo", "tag"}),
    "networks.connect": frozenset(),
    "networks.create": frozenset(),
    "networks.delete": frozenset(),
    "networks.disconnect": frozenset(),
    "networks.prune": frozenset({"filters"}),
    "volumes.create": frozenset(),
    "volumes.delete": frozenset({"force"}),
    "volumes.prune": frozenset({"filters"}),
    "volumes.update": frozenset({"version"}),
}
# `force` the Docker API defines, that Podman widens to other containers: an image delete with
# force removes every container made from the image (libpod RemoveContainersForImageCallback).
_PODMAN_FORCE_REMOVES = frozenset({"images.delete"})
# Values both engines read as false (dockerd: "", 0, no, false, none; Podman: strconv.ParseBool).
_FALSE = frozenset({"", "0", "false", "False", "FALSE"})


def podman_query_reason(operation: str, query: Mapping[str, str]) -> str | None:
    """On Podman: a state-changing operation's parameters are the Docker API's, and none of
    them reaches containers the request does not name."""
    allowed = DOCKER_WRITE_PARAMS.get(operation)
    if allowed is None:
        return None
    for name in query:
        if name not in allowed:
            return (
                f"parameter {name!r} is not one the Docker API defines for {operation} "
                "(Podman reads it, and may act beyond the object named)"
            )
    if operation in _PODMAN_FORCE_REMOVES and query.get("force", "") not in _FALSE:
        return (
            f"{operation} with force is not allowed on Podman "
            "(it also removes every container that uses the object)"
        )
    return None


def query_reason(
    operation: str,
    query: Mapping[str, str],
    engine: Engine = "unknown",
    params: Mapping[str, str] | None = None,
) -> str | None:
    """Why the request's query parameters (or, for a push, the image named in the path: its
    default destination) reach outside the daemon's own stores or beyond the object the request
    names, or None. An unidentified engine is read as Podman (strictest)."""
    check = QUERY_CHECKS.get(operation)
    bad = None if check is None else check(query)
    if bad is None and operation == "images.push" and params is not None:
        bad = _name_reason("image", params.get("name"))
    if bad is None and engine != "docker" and query:
        bad = podman_query_reason(operation, query)
    return bad


# -- container list filters that name a container -------------------------------------------
# `GET /containers/json?filters={"since":[ref]}` (and `before`): dockerd (daemon/list.go) and
# Podman's compat list (libpod's container filters) look each value up as a container (full
# ID, name, ID prefix) and fail on one that does not exist, so under visibility these values
# would tell a client which hidden containers exist and when they were made. The proxy resolves
# each value as it resolves a container in a path (an upstream inspect), refuses one that is
# not a visible container, and forwards the resolved full ID in its place.
LIST_REF_FILTERS = ("since", "before")


def filters_doc(raw: str | None) -> dict[str, Any]:
    """A `filters` value decoded, in either form both daemons accept (`{"k": {"v": true}}` or
    the legacy `{"k": ["v"]}`, one form for all keys, as dockerd's filters.FromJSON reads it).
    BadBody when neither daemon could read it."""
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        raise BadBody("filters is not valid JSON") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise BadBody("filters must be a JSON object")
    values = [v for v in doc.values() if v is not None]
    current = all(isinstance(v, dict) and all(type(b) is bool for b in v.values()) for v in values)
    legacy = all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in values)
    if not (current or legacy):
        raise BadBody("filters must map each name to {value: bool} or to [values]")
    return doc


def list_filter_refs(raw: str | None) -> list[str]:
    """The container refs a containers.list `filters` value names (`since`, `before`), each
    once, in the order sent. BadBody for a value neither daemon could read."""
    doc = filters_doc(raw)
    refs: list[str] = []
    for key in LIST_REF_FILTERS:
        for ref in doc.get(key) or ():
            if ref not in refs:
                refs.append(ref)
    return refs


def resolved_list_filters(raw: str | None, ids: Mapping[str, str]) -> str:
    """The `filters` value with each `since`/`before` ref replaced by the full ID it resolved
    to (`ids`: every ref list_filter_refs() gave), in the form it was sent; the other filters
    are kept as sent."""
    doc = filters_doc(raw)
    for key in LIST_REF_FILTERS:
        values = doc.get(key)
        if not values:
            continue
        resolved = list(dict.fromkeys(ids[ref] for ref in values))
        doc[key] = dict.fromkeys(resolved, True) if isinstance(values, dict) else resolved
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


def list_target_with_ids(
    target: RequestTarget, query: Mapping[str, str], ids: Mapping[str, str]
) -> RequestTarget:
    """The containers.list request-target to forward: its `since`/`before` filters naming the
    resolved full IDs, so that the daemon lists relative to the very containers decided on
    (other parameters kept: each appears once, as parse_query guarantees)."""
    if not ids:
        return target
    params = {**query, "filters": resolved_list_filters(query.get("filters"), ids)}
    return replace(target, query=urlencode(params))
