"""Compare-then-apply of a policy's children, and pruning of the ones no longer rendered.

A child is exactly what the operator renders plus what Kubernetes itself defaults. Two
kinds of drift:

- a field the operator sets was changed (desired is not a subset of live) or the operator
  wants a different set of fields than last time (the applied-hash annotation): one forced
  server-side apply puts it back;
- a field the operator never sets was ADDED by someone else (hostPID, an extra volume,
  `egress: [{}]`): a forced apply leaves fields of other field managers alone, so the
  operator first takes those fields over (rewrites managedFields so its own apply entry owns
  them) and then applies: server-side apply removes what its manager owned and no longer
  sends. Defaulted fields belong to no manager, so they are never touched.

Everything else is read-only, so a steady cluster sees no writes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from docker_socket_operator.controller.kube import CHILD_KINDS, ApiError, KubeClient, kind_of
from docker_socket_operator.controller.ownership import (
    field_paths,
    foreign_fields,
    take_over,
)
from docker_socket_operator.controller.render.common import (
    MANAGED_BY_LABEL,
    MANAGER,
    POLICY_LABEL,
    policy_label_value,
    stable_hash,
)

APPLIED_HASH_ANNOTATION = "dockersocket.io/applied-hash"

# Called after a repair that removed foreign fields: (the child as now, the removed paths).
RepairReporter = Callable[[dict[str, Any], list[str]], Awaitable[None]]

log = logging.getLogger(__name__)


def with_applied_hash(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    annotations = {**meta.get("annotations", {}), APPLIED_HASH_ANNOTATION: stable_hash(obj)[:16]}
    return {**obj, "metadata": {**meta, "annotations": annotations}}


def is_subset(desired: Any, live: Any) -> bool:
    """Every field of `desired` has the same value in `live` (empty values match absence,
    as the API server drops empty lists and maps)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return not desired and live is None
        return all(is_subset(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        if live is None:
            return not desired
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(is_subset(d, v) for d, v in zip(desired, live, strict=True))
    return bool(desired == live)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """`desired` already carries the applied-hash annotation (see `with_applied_hash`)."""
    if live is None or live.get("metadata", {}).get("deletionTimestamp"):
        return True
    return not is_subset(desired, live)


async def apply_child(
    client: KubeClient, obj: dict[str, Any], *, on_repair: RepairReporter | None = None
) -> dict[str, Any]:
    """Make one child match; returns the live object (after the write, if any)."""
    desired = with_applied_hash(obj)
    meta = desired["metadata"]
    path = kind_of(desired).path(meta["namespace"], meta["name"])
    live = await client.get(path)
    what = f"{desired['kind']} {meta['namespace']}/{meta['name']}"
    if live is not None and not live["metadata"].get("deletionTimestamp"):
        foreign = foreign_fields(live)
        if foreign is not None:
            paths = field_paths(foreign)
            log.warning(
                "drift: %s has fields set by others (%s): rendering it afresh",
                what, ", ".join(paths) or "managedFields reset",
            )  # fmt: skip
            await _take_over(client, path, live)
            result = await client.apply(desired)
            if on_repair is not None:
                await on_repair(result, paths)
            return result
    if live is not None and not needs_apply(desired, live):
        return live
    log.info("applying %s (%s)", what, "created" if live is None else "changed")
    return await client.apply(desired)


async def _take_over(client: KubeClient, path: str, live: dict[str, Any]) -> None:
    """The managedFields take-over; the object moving meanwhile (a status write) means a
    conflict: read it again and retry rather than wait for the next event."""
    for attempt in range(3):
        try:
            await client.merge_patch(path, take_over(live))
            return
        except ApiError as exc:
            fresh = await client.get(path) if exc.status == 409 and attempt < 2 else None
            if fresh is None:
                raise
            live = fresh


async def prune_children(
    client: KubeClient, namespace: str, policy_name: str, keep: Iterable[dict[str, Any]]
) -> list[str]:
    """Delete labelled children of this policy that the rendering no longer has."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in keep}
    selector = f"{MANAGED_BY_LABEL}={MANAGER},{POLICY_LABEL}={policy_label_value(policy_name)}"
    deleted = []
    for kind in CHILD_KINDS:
        for item in await client.list(kind.path(namespace), selector):
            name = item["metadata"]["name"]
            if (kind.kind, name) not in wanted and _owned_by(item, policy_name):
                log.info("pruning %s %s/%s", kind.kind, namespace, name)
                await client.delete(kind.path(namespace, name))
                deleted.append(f"{kind.kind}/{name}")
    return deleted


def _owned_by(obj: dict[str, Any], policy_name: str) -> bool:
    return any(
        ref.get("kind") == "DockerSocketPolicy" and ref.get("name") == policy_name
        for ref in obj.get("metadata", {}).get("ownerReferences") or []
    )


def owner_policy(obj: dict[str, Any]) -> str | None:
    """The name of the policy a child belongs to (its controller owner reference)."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "DockerSocketPolicy" and ref.get("controller"):
            name: str = ref["name"]
            return name
    return None
