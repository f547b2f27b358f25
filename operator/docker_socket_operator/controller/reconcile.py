"""One idempotent reconcile per policy: validate ▸ render ▸ compare-and-apply ▸ prune ▸ status.

Create, update, resume and drift events all end here; running it twice in a row writes
nothing the second time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.controller.apply import apply_child, prune_children
from docker_socket_operator.controller.kube import DAEMONSET, POLICY, ApiError, KubeClient
from docker_socket_operator.controller.render import RenderOptions, child_name, render
from docker_socket_operator.controller.render.service import endpoint
from docker_socket_operator.controller.status import Outcome, compute_status, status_patch
from docker_socket_operator.controller.validate import validate_policy
from docker_socket_operator.policy.types import PolicyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str
    image: str
    render: RenderOptions = field(default_factory=RenderOptions)


class ReconcileFailed(Exception):
    """Children could not be applied; status says Degraded/ApplyFailed. Worth a retry."""


class Reconciler:
    def __init__(self, client: KubeClient, config: OperatorConfig) -> None:
        self.client = client
        self.config = config
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def reconcile_named(self, name: str, *, prune: bool = False) -> None:
        """Reconcile the policy called `name` as it is now (gone or deleting: nothing)."""
        async with self._lock(name):
            policy = await self.client.get(POLICY.path(name=name))
            if policy is None:
                self._locks.pop(name, None)
                return
            await self._reconcile(policy, prune=prune)

    async def reconcile(self, policy: dict[str, Any], *, prune: bool = True) -> None:
        async with self._lock(policy["metadata"]["name"]):
            # Re-read: the body kopf hands over may be older than a status we just wrote.
            fresh = await self.client.get(POLICY.path(name=policy["metadata"]["name"]))
            if fresh is not None:
                await self._reconcile(fresh, prune=prune)

    async def _reconcile(self, policy: dict[str, Any], *, prune: bool) -> None:
        meta = policy["metadata"]
        if meta.get("deletionTimestamp"):
            return  # the garbage collector removes the children
        name = meta["name"]
        ns = self.config.namespace
        try:
            spec = validate_policy(policy)
        except PolicyError as exc:
            log.warning("policy %s is invalid, nothing applied: %s", name, exc)
            # The children of the last valid generation (if any) keep serving.
            old_ds = await self.client.get(DAEMONSET.path(ns, child_name(name)))
            await self._write_status(policy, Outcome("InvalidPolicy", str(exc)), old_ds)
            return

        children = render(policy, ns, self.config.image, self.config.render)
        ds: dict[str, Any] | None = None
        try:
            for child in children:
                live = await apply_child(self.client, child)
                if child["kind"] == "DaemonSet":
                    ds = live
            if prune:
                await prune_children(self.client, ns, name, children)
        except ApiError as exc:
            log.error("applying the children of %s failed: %s", name, exc)
            await self._write_status(policy, Outcome("ApplyFailed", exc.message), ds)
            raise ReconcileFailed(str(exc)) from exc
        await self._write_status(policy, Outcome(endpoint=endpoint(name, ns, spec.port)), ds)

    async def _write_status(
        self, policy: dict[str, Any], outcome: Outcome, ds: dict[str, Any] | None
    ) -> None:
        new = compute_status(policy, outcome, ds)
        patch = status_patch(policy.get("status"), new)
        if patch is None:
            return
        path = POLICY.path(name=policy["metadata"]["name"]) + "/status"
        try:
            await self.client.merge_patch(path, patch)
        except ApiError as exc:
            if exc.status != 404:  # deleted meanwhile
                raise
