"""The policy's status, computed (purely) from the outcome of a reconcile and the DaemonSet.

Conditions follow kstatus (Flux, Argo CD health scripts, `kubectl wait`): `Ready` is True
only when every matching node runs an up-to-date, ready proxy; `Reconciling` mirrors
`Progressing` and `Stalled` mirrors an invalid policy, the two conditions kstatus reads.
A condition's `lastTransitionTime` only moves when its status does, so an unchanged cluster
computes an unchanged status and the operator writes nothing.

Nodes without a ready proxy are named with the reason (nodeproblems.py). One that needs a person
(a missing socket, an image that cannot be pulled...) sets `Degraded` (Argo CD: Degraded) but
leaves `Stalled` alone: the kubelet keeps retrying and the policy recovers by itself when the
node is fixed, so kstatus says InProgress, never Failed.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.controller.nodeproblems import ORDER, NodeProblem, describe

CONDITION_TYPES = ("Ready", "Progressing", "Degraded", "Reconciling", "Stalled")
# Present only while spec.mode is audit: the proxies do not enforce the rules.
AUDIT_MODE_MESSAGE = (
    "spec.mode is audit: requests the rules deny are forwarded and logged as would-deny "
    "(only the audit floor is enforced); `docker-socket-operator suggest` writes the policy"
)


@dataclass(frozen=True)
class Outcome:
    """What the reconcile got to. `error_reason` set: nothing new was applied."""

    error_reason: str | None = None  # InvalidPolicy | ApplyFailed
    error_message: str = ""
    endpoint: str | None = None
    matching_nodes: int | None = None  # nodes the policy selects (None: not known)
    warnings: tuple[str, ...] = ()
    controller_name: str | None = None


@dataclass(frozen=True)
class Rollout:
    desired: int
    ready: int
    updated: int
    available: int
    current: bool  # the DaemonSet controller has seen the latest DaemonSet spec
    scheduled: int = 0  # what the DaemonSet itself wants (may differ from `desired` on drift)

    @classmethod
    def from_daemonset(
        cls, ds: dict[str, Any] | None, matching: int | None = None
    ) -> Rollout | None:
        """`matching`: the nodes the policy selects; the DaemonSet's counts never replace it."""
        if ds is None:
            return None
        st = ds.get("status") or {}
        generation = ds.get("metadata", {}).get("generation", 0)
        scheduled = int(st.get("desiredNumberScheduled", 0))
        desired = scheduled if matching is None else matching
        return cls(
            desired=desired,
            ready=min(int(st.get("numberReady", 0)), desired),
            updated=min(int(st.get("updatedNumberScheduled", 0)), desired),
            available=min(int(st.get("numberAvailable", 0)), desired),
            current=int(st.get("observedGeneration", 0)) >= int(generation),
            scheduled=scheduled,
        )


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, true: bool, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if true else "False",
        "reason": reason,
        "message": message,
    }


def rollout_conditions(
    rollout: Rollout | None, problems: Sequence[NodeProblem] = ()
) -> list[dict[str, Any]]:
    """Ready, Progressing, Degraded for policy whose children were applied; `problems`: why
    the nodes without a ready proxy have none (only looked for when some are missing)."""
    if rollout is None or not rollout.current:
        msg = "waiting for the DaemonSet controller"
        return [
            _condition("Ready", False, "RollingOut", msg),
            _condition("Progressing", True, "RollingOut", msg),
            _condition("Degraded", False, "AsExpected", ""),
        ]
    nodes = f"{rollout.ready}/{rollout.desired} nodes ready"
    if rollout.desired == 0:
        msg = "no node matches spec.nodeSelector (and tolerations)"
        return [
            _condition("Ready", False, "NoMatchingNodes", msg),
            _condition("Progressing", False, "NoMatchingNodes", msg),
            _condition("Degraded", True, "NoMatchingNodes", msg),
        ]
    done = (
        rollout.desired == rollout.scheduled == rollout.updated == rollout.ready
        == rollout.available
    )  # fmt: skip
    if done:
        return [
            _condition("Ready", True, "Available", nodes),
            _condition("Progressing", False, "RolloutComplete", nodes),
            _condition("Degraded", False, "AsExpected", ""),
        ]
    if rollout.scheduled != rollout.desired:
        msg = f"the DaemonSet targets {rollout.scheduled} of the {rollout.desired} matching nodes"
        reason = "RollingOut"
    elif rollout.updated < rollout.desired:
        msg = f"{rollout.updated}/{rollout.desired} nodes updated, {nodes}"
        reason = "RollingOut"
    else:
        msg, reason = nodes, "ProxiesNotReady"
    if problems:
        msg = f"{msg}; {describe(problems)}"
    broken = [p for p in problems if p.degrading]
    if not broken:
        degraded = _condition("Degraded", False, "AsExpected", "")
    else:
        worst = min(broken, key=lambda p: ORDER.index(p.reason)).reason
        degraded = _condition("Degraded", True, worst, f"{nodes}; {describe(broken)}")
        reason = worst
    return [
        _condition("Ready", False, reason, msg),
        _condition("Progressing", True, reason, msg),
        degraded,
    ]


def error_conditions(reason: str, message: str) -> list[dict[str, Any]]:
    # A failed apply is retried, so it is still in progress (kstatus InProgress, not Current);
    # an invalid policy waits for a spec change and is Stalled instead.
    retrying = reason != "InvalidPolicy"
    return [
        _condition("Ready", False, reason, message),
        _condition("Progressing", retrying, reason, message),
        _condition("Degraded", True, reason, message),
    ]


def _kstatus_mirrors(conditions: list[dict[str, Any]], stalled: bool) -> list[dict[str, Any]]:
    by_type = {c["type"]: c for c in conditions}
    progressing = by_type["Progressing"]
    degraded = by_type["Degraded"]
    return [
        {**progressing, "type": "Reconciling"},
        _condition(
            "Stalled", stalled, degraded["reason"] if stalled else "AsExpected",
            degraded["message"] if stalled else "",
        ),
    ]  # fmt: skip


def _keep_transition_times(
    new: list[dict[str, Any]], old: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old if isinstance(c, dict)}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        stamp = before.get("lastTransitionTime") if same and before else None
        out.append({**cond, "lastTransitionTime": stamp or now})
    return out


def compute_status(
    policy: dict[str, Any],
    outcome: Outcome,
    daemonset: dict[str, Any] | None,
    now: str | None = None,
    problems: Sequence[NodeProblem] = (),
) -> dict[str, Any]:
    """The whole `status` for `policy` (the object as last read)."""
    generation = policy.get("metadata", {}).get("generation")
    old = policy.get("status") or {}
    rollout = Rollout.from_daemonset(daemonset, outcome.matching_nodes)
    if outcome.error_reason:
        conditions = error_conditions(outcome.error_reason, outcome.error_message)
        stalled = outcome.error_reason == "InvalidPolicy"  # only a spec change can fix it
    else:
        conditions = rollout_conditions(rollout, problems)
        stalled = False
    conditions += _kstatus_mirrors(conditions, stalled)
    if (policy.get("spec") or {}).get("mode") == "audit":
        conditions.append(_condition("AuditMode", True, "AuditMode", AUDIT_MODE_MESSAGE))
    for cond in conditions:
        cond["observedGeneration"] = generation
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": _keep_transition_times(
            conditions, old.get("conditions") or [], now or now_rfc3339()
        ),
    }
    endpoint = outcome.endpoint or old.get("endpoint")
    if endpoint:
        status["endpoint"] = endpoint
    if outcome.warnings:
        status["warnings"] = list(outcome.warnings)
    if outcome.controller_name:
        status["controllerName"] = outcome.controller_name
    if rollout is not None:
        status["nodes"] = {"desired": rollout.desired, "ready": rollout.ready}
        status["nodesReady"] = f"{rollout.ready}/{rollout.desired}"
    return status


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning `old` into `new` (None: nothing to write).

    Lists (conditions) are replaced whole, keys that disappeared are set to null."""
    old = old or {}
    if old == new:
        return None
    patch: dict[str, Any] = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None
    return {"status": patch}
