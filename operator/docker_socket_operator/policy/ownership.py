"""Ownership (spec.ownership): what a client creates carries the policy's owner label, and
`owned` rules reach only what carries it. Pure: the proxy calls `forwarded_request` once per
allowed request and sends what it returns.

The create body is rewritten from the decoding the checks read (policy/body.py), never spliced
as text: every object is re-emitted with its keys as sent, so dockerd and Podman (whose compat
create embeds the same container.Config) decode every other field exactly as before, and the
Labels they read is the one the checks read (duplicate keys were already refused).

Lists and prunes of owned objects are narrowed by the daemon itself: `label=OWNER` is added to
their `filters`. Both engines AND their label filters (dockerd `MatchKVList`, Podman
`MatchLabelFilters`), so the added filter can only narrow what the client's own filters select.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from docker_socket_operator.catalogue.types import RequestTarget
from docker_socket_operator.policy.body import DockerObject, fold_key
from docker_socket_operator.policy.queries import filters_doc
from docker_socket_operator.policy.types import BadBody

OWNER_LABEL = "dockersocket.io/owner"
# Label keys a client may never set: the proxy's own (compared folded, so no look-alike key
# passes on a daemon that would fold it).
RESERVED_LABEL_PREFIX = "dockersocket.io/"
STAMPED_OPERATIONS = frozenset({"containers.create", "networks.create", "volumes.create"})
# Answered by the daemon from its `filters` query: narrowed to owned objects by a label filter.
NARROWED_OPERATIONS = frozenset(
    {"containers.prune", "networks.prune", "volumes.prune", "networks.list", "volumes.list"}
)


def reserved_label_reason(body: Any) -> str | None:
    """Why a create body may not be forwarded: it sets a label only the proxy sets."""
    labels = body.get("labels") if isinstance(body, DockerObject) else None
    if not isinstance(labels, DockerObject):
        return None
    for key in labels.as_map():
        if fold_key(key).startswith(RESERVED_LABEL_PREFIX):
            return f"label {key!r} is set by the proxy only ({RESERVED_LABEL_PREFIX}*)"
    return None


def encode_docker_json(doc: Any) -> bytes:
    """JSON for a decode_docker_json() result: objects with their keys as sent. Strings are
    escaped to ASCII (a lone surrogate stays the escape it was); a float is written as its
    shortest repr, which Go parses to the same float64 (and refuses into an integer field
    as it refused the original, which also had a '.' or exponent)."""
    return json.dumps(_as_sent(doc), ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _as_sent(value: Any) -> Any:
    if isinstance(value, DockerObject):
        return {key: _as_sent(item) for key, item in value.as_map().items()}
    if isinstance(value, list):
        return [_as_sent(item) for item in value]
    return value


def stamp_owner(body: Any, owner: str) -> bytes:
    """The create body to forward: `body` (decoded; None for none) with the owner label added to
    its Labels, under the key spelling the client used. BadBody for a Labels that is not an
    object (the daemon could not read it either)."""
    doc = body if isinstance(body, DockerObject) else DockerObject()
    labels = doc.get("labels")
    if labels is None:
        labels = DockerObject()
    elif not isinstance(labels, DockerObject):
        raise BadBody("Labels must be a JSON object")
    stamped = DockerObject(
        [(k, v) for k, v in labels.as_map().items() if k != OWNER_LABEL] + [(OWNER_LABEL, owner)]
    )
    pairs = [(doc.exact.get(k, k), stamped if k == "labels" else v) for k, v in doc.items()]
    if "labels" not in doc:
        pairs.append(("Labels", stamped))
    return encode_docker_json(DockerObject(pairs))


def narrowed_filters(raw: str | None, owner: str) -> str:
    """A `filters` value (Docker's JSON, in either form the daemons accept) with label=OWNER
    added; the client's own filters are kept as sent. BadBody when neither daemon could read it."""
    doc = filters_doc(raw)
    wanted = f"{OWNER_LABEL}={owner}"
    label: Any
    values = [v for v in doc.values() if v is not None]
    if values and isinstance(values[0], list):
        label = [*(doc.get("label") or []), wanted]  # legacy form: {"label": ["k=v"]}
    else:
        label = dict(doc.get("label") or {})
        label[wanted] = True  # current form: {"label": {"k=v": true}}
    return json.dumps({**doc, "label": label}, ensure_ascii=True, separators=(",", ":"))


def narrowed_target(target: RequestTarget, query: Mapping[str, str], owner: str) -> RequestTarget:
    """The request-target with its filters narrowed to owned objects (other parameters kept:
    each appears once, as parse_query guarantees)."""
    params = {**query, "filters": narrowed_filters(query.get("filters"), owner)}
    return replace(target, query=urlencode(params))


def forwarded_request(
    owner: str | None,
    op_name: str,
    narrow: bool,
    target: RequestTarget,
    query: Mapping[str, str],
    body: Any,
    engine: str = "docker",
) -> tuple[RequestTarget, bytes | None]:
    """What goes to the daemon for an allowed request under ownership: the target (narrowed for
    an owned list or prune) and the body bytes to send instead of the client's (None: send the
    client's, unchanged). `body` is the decoded body the decision read."""
    if owner is None:
        return target, None
    if op_name in STAMPED_OPERATIONS:
        return target, stamp_owner(body, owner)
    if narrow and op_name in NARROWED_OPERATIONS:
        if engine != "docker" and (op_name.endswith(".prune") or "filters" in query):
            # Podman 4.3 pruned an unowned labelled volume under the added filter: its label
            # filters are not ANDed everywhere, so only an unfiltered list is narrowed there.
            raise BadBody(f"{op_name} with filters cannot be narrowed to owned objects on {engine}")
        return narrowed_target(target, query, owner), None
    return target, None
