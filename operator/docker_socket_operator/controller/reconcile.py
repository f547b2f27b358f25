"""One idempotent reconcile per policy: validate ▸ render ▸ compare-and-apply ▸ prune ▸ status.

Create, update, resume and drift events all end here; running it twice in a row writes
nothing the second time. Policies addressed to another operator install are left alone
(and any children this install made for them earlier are removed).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.controller.apply import apply_child, prune_children
from docker_socket_operator.controller.kube import (
    CHILD_KINDS,
    DAEMONSET,
    EVENT,
    NODE,
    POD,
    POLICY,
    ApiError,
    KubeClient,
)
from docker_socket_operator.controller.nodeproblems import NodeProblem, node_problems
from docker_socket_operator.controller.nodes import matching_nodes
from docker_socket_operator.controller.render import RenderOptions, child_name, render
from docker_socket_operator.controller.render.common import (
    MANAGED_BY_LABEL,
    MANAGER,
    POLICY_LABEL,
    policy_label_value,
    selector_labels,
)
from docker_socket_operator.controller.render.daemonset import PROXY_UID
from docker_socket_operator.controller.render.service import endpoint
from docker_socket_operator.controller.status import (
    Outcome,
    Rollout,
    compute_status,
    status_patch,
)
from docker_socket_operator.controller.term import Term
from docker_socket_operator.controller.validate import validate_policy
from docker_socket_operator.policy.types import PolicyError

log = logging.getLogger(__name__)

DEFAULT_CONTROLLER_NAME = "dockersocket.io/operator"


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str
    image: str
    render: RenderOptions = field(default_factory=RenderOptions)
    # Which policies this install serves: those naming it in spec.controllerName, and the
    # unaddressed ones when it is the default install.
    controller_name: str = DEFAULT_CONTROLLER_NAME
    default_controller: bool = True
    retry_delay: float = 10.0
    # How long a rollout may stay short of ready nodes before the operator reads the pods and
    # their Events to say why in the status (a healthy rollout never pays for the reads).
    stuck_after: float = 10.0

    def serves(self, policy: dict[str, Any]) -> bool:
        wanted = (policy.get("spec") or {}).get("controllerName")
        if wanted is None:
            return self.default_controller
        return bool(wanted == self.controller_name)


class ReconcileFailed(Exception):
    """Children could not be applied; status says Degraded/ApplyFailed. Worth a retry."""


def warnings_for(spec: DockerSocketPolicySpec) -> tuple[str, ...]:
    if spec.runAsRoot:
        return (
            "spec.runAsRoot: the proxy runs as uid 0 (capabilities dropped); prefer "
            "socket.group, the socket's group id (`stat -c %g SOCKET` on a node)",
        )
    if spec.socket.group is None:
        return (
            f"spec.socket.group is not set: the proxy (uid {PROXY_UID}) can only open a socket "
            "anyone may write to; set it to the socket's group id (`stat -c %g SOCKET` on a node)",
        )
    return ()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler:
    """The reconciler of one leadership term (see term.py): all its writes and background
    tasks end with the term."""

    def __init__(
        self, client: KubeClient, config: OperatorConfig, term: Term | None = None
    ) -> None:
        self.client = client
        self.config = config
        self.term = term or Term()
        self._locks: dict[str, asyncio.Lock] = {}
        self._retries: set[str] = set()
        self._rechecks: set[str] = set()
        # Since when (monotonic) each policy's rollout has been short of ready nodes.
        self._short_since: dict[str, float] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def retry_later(self, name: str) -> None:
        """One delayed reconcile per policy at a time, retrying until it succeeds; it belongs
        to the term and is cancelled with it."""
        self._later(name, self.config.retry_delay, self._retries)

    def recheck_later(self, name: str, delay: float) -> None:
        """Look again while proxies are missing: their pods' trouble moves no child of ours."""
        self._later(name, delay, self._rechecks)

    def _later(self, name: str, delay: float, pending: set[str]) -> None:
        if name in pending or not self.term.active:
            return
        pending.add(name)

        async def later() -> None:
            await asyncio.sleep(delay)
            pending.discard(name)
            try:
                await self.reconcile_named(name)
            except Exception as exc:
                log.warning("retry for %s failed (%s)", name, exc)
                self.retry_later(name)

        self.term.spawn(later())

    async def reconcile_named(self, name: str, *, prune: bool = False) -> None:
        """Reconcile the policy called `name` as it is now (gone: nothing)."""
        async with self._lock(name):
            policy = await self.client.get(POLICY.path(name=name))
            if policy is None:
                self._locks.pop(name, None)
                self._short_since.pop(name, None)
                return
            await self._reconcile(policy, prune=prune)

    async def reconcile(self, policy: dict[str, Any], *, prune: bool = True) -> None:
        async with self._lock(policy["metadata"]["name"]):
            # Re-read: the body kopf hands over may be older than a status we just wrote.
            fresh = await self.client.get(POLICY.path(name=policy["metadata"]["name"]))
            if fresh is not None:
                await self._reconcile(fresh, prune=prune)

    async def child_changed(self, child: dict[str, Any], owner: str) -> None:
        """A child moved: repair its policy, or delete it when its policy is gone (deleted
        while the operator was away, or replaced by a new policy of the same name)."""
        async with self._lock(owner):
            policy = await self.client.get(POLICY.path(name=owner))
            uids = {
                ref.get("uid")
                for ref in child["metadata"].get("ownerReferences") or []
                if ref.get("kind") == "DockerSocketPolicy"
            }
            if (
                policy is None
                or policy["metadata"]["uid"] not in uids
                or not self.config.serves(policy)
            ):
                meta = child["metadata"]
                if meta.get("deletionTimestamp"):
                    return
                kind = next(k for k in CHILD_KINDS if k.kind == child["kind"])
                log.info("deleting %s %s/%s: its policy %s is gone or not ours", child["kind"],
                         meta["namespace"], meta["name"], owner)  # fmt: skip
                await self.client.delete(kind.path(meta["namespace"], meta["name"]), meta["uid"])
                return
            await self._reconcile(policy, prune=False)

    async def delete_children(self, name: str, uid: str | None) -> list[str]:
        """Delete this install's children of one policy (of the incarnation `uid`, or any)."""
        ns = self.config.namespace
        selector = f"{MANAGED_BY_LABEL}={MANAGER},{POLICY_LABEL}={policy_label_value(name)}"
        deleted = []
        for kind in CHILD_KINDS:
            for item in await self.client.list(kind.path(ns), selector):
                meta = item["metadata"]
                refs = [
                    r for r in meta.get("ownerReferences") or []
                    if r.get("kind") == "DockerSocketPolicy" and r.get("name") == name
                ]  # fmt: skip
                if not refs or (uid and all(r.get("uid") != uid for r in refs)):
                    continue
                if meta.get("deletionTimestamp"):
                    continue
                await self.client.delete(kind.path(ns, meta["name"]), meta["uid"])
                deleted.append(f"{kind.kind}/{meta['name']}")
        if deleted:
            log.info("deleted the children of policy %s: %s", name, ", ".join(deleted))
        return deleted

    async def _reconcile(self, policy: dict[str, Any], *, prune: bool) -> None:
        meta = policy["metadata"]
        name = meta["name"]
        if meta.get("deletionTimestamp"):
            # Not waiting for the garbage collector (slow to learn a new CRD's kind).
            await self.delete_children(name, meta.get("uid"))
            return
        if not self.config.serves(policy):
            # Addressed to another install (maybe moved there): nothing of ours may stay.
            await self.delete_children(name, None)
            return
        ns = self.config.namespace
        try:
            spec = validate_policy(policy)
        except PolicyError as exc:
            log.warning("policy %s is invalid, nothing applied: %s", name, exc)
            # The children of the last valid generation (if any) keep serving.
            old_ds = await self.client.get(DAEMONSET.path(ns, child_name(name)))
            await self._write_status(
                policy,
                Outcome("InvalidPolicy", str(exc), controller_name=self.config.controller_name),
                old_ds,
            )
            return

        children = render(policy, ns, self.config.image, self.config.render)
        ds: dict[str, Any] | None = None
        try:
            for child in children:
                live = await apply_child(self.client, child, on_repair=self._report_repair)
                if child["kind"] == "DaemonSet":
                    ds = live
            if prune:
                await prune_children(self.client, ns, name, children)
            nodes = matching_nodes(await self.client.list(NODE.path()), spec)
            problems = await self._node_problems(
                name, Rollout.from_daemonset(ds, len(nodes)), nodes
            )
        except ApiError as exc:
            log.error("applying the children of %s failed: %s", name, exc)
            await self._write_status(
                policy,
                Outcome("ApplyFailed", exc.message, controller_name=self.config.controller_name),
                ds,
            )
            raise ReconcileFailed(str(exc)) from exc
        outcome = Outcome(
            endpoint=endpoint(name, ns, spec.port),
            matching_nodes=len(nodes),
            warnings=warnings_for(spec),
            controller_name=self.config.controller_name,
        )
        await self._write_status(policy, outcome, ds, problems)

    async def _node_problems(
        self, name: str, rollout: Rollout | None, nodes: list[str]
    ) -> list[NodeProblem]:
        """Why nodes lack a ready proxy: read only once a rollout has been short of ready
        nodes for `stuck_after`, then again every `retry_delay` until it is not."""
        if rollout is None or not rollout.current or rollout.ready >= rollout.desired:
            self._short_since.pop(name, None)
            return []
        now = time.monotonic()
        waited = now - self._short_since.setdefault(name, now)
        if waited < self.config.stuck_after:
            self.recheck_later(name, self.config.stuck_after - waited)
            return []
        self.recheck_later(name, self.config.retry_delay)
        ns = self.config.namespace
        selector = ",".join(f"{k}={v}" for k, v in selector_labels(name).items())
        try:
            pods = await self.client.list(POD.path(ns), selector)
            events = await self.client.list(
                EVENT.path(ns), field_selector="involvedObject.kind=Pod,type=Warning"
            )
        except ApiError as exc:  # an explanation missing is no reason to fail the reconcile
            log.warning("cannot read the proxy pods of %s or their Events: %s", name, exc)
            return []
        return node_problems(pods, events, nodes)

    async def _report_repair(self, child: dict[str, Any], paths: list[str]) -> None:
        """An Event on the repaired child: `kubectl get events` shows who changed what."""
        meta = child["metadata"]
        message = "removed or reset fields set outside the operator: " + (
            ", ".join(paths) or "managedFields reset"
        )
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": child["apiVersion"],
                "kind": child["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": "DriftRepaired",
            "message": message[:1024],
            "type": "Warning",
            "source": {"component": MANAGER},
            "reportingComponent": MANAGER,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "count": 1,
        }
        try:
            await self.client.create(EVENT.path(meta["namespace"]), event)
        except ApiError as exc:
            log.warning("could not record the drift repair as an Event: %s", exc)

    async def _write_status(
        self,
        policy: dict[str, Any],
        outcome: Outcome,
        ds: dict[str, Any] | None,
        problems: list[NodeProblem] | None = None,
    ) -> None:
        new = compute_status(policy, outcome, ds, problems=problems or ())
        patch = status_patch(policy.get("status"), new)
        if patch is None:
            return
        path = POLICY.path(name=policy["metadata"]["name"]) + "/status"
        try:
            await self.client.merge_patch(path, patch)
        except ApiError as exc:
            if exc.status != 404:  # deleted meanwhile
                raise
