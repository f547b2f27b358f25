"""Why a policy's proxies are not ready, node by node, from their pods and the pods' Events.

Pure: the reconcile reads the pods and Warning Events only while fewer nodes are ready than
the policy selects, and hands them here. The texts are stable for as long as the failure is
the same (the kubelet's back-off timers, counts and alternating ErrImagePull/ImagePullBackOff
never reach them), so a node that stays broken computes an unchanged status: no writes.

A problem "degrades" the policy when it needs a person (a missing socket, an image that cannot
be pulled, a crashing proxy, a pod no node can take); a pod that is merely starting does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Most telling first: the Degraded condition's reason is the first of these that occurs.
SOCKET_MISSING = "SocketMissing"
IMAGE_PULL_FAILED = "ImagePullFailed"
PROXY_CRASHING = "ProxyCrashing"
PROXY_NOT_STARTING = "ProxyNotStarting"
UNSCHEDULABLE = "Unschedulable"
PROXY_NOT_READY = "ProxyNotReady"
STARTING = "ProxyStarting"
NO_POD = "NoProxyPod"
ORDER = (
    SOCKET_MISSING, IMAGE_PULL_FAILED, PROXY_CRASHING, PROXY_NOT_STARTING, UNSCHEDULABLE,
    PROXY_NOT_READY, STARTING, NO_POD,
)  # fmt: skip
DEGRADING = frozenset(ORDER[:6])

IMAGE_WAITING = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
START_WAITING = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreCreateHookError",
     "PreStartHookError", "PostStartHookError"}
)  # fmt: skip
# Consecutive failed readiness probes before a running proxy counts as broken, not starting
# (the probe's own failureThreshold is 2: one more rules out the first probe of a slow start).
UNHEALTHY_COUNT = 3
DETAIL_LIMIT = 200
NODES_LISTED = 5


@dataclass(frozen=True)
class NodeProblem:
    node: str
    reason: str  # one of ORDER
    detail: str

    @property
    def degrading(self) -> bool:
        return self.reason in DEGRADING


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def pod_node(pod: dict[str, Any]) -> str | None:
    """The node a DaemonSet pod is for: bound (spec.nodeName) or not yet (its node affinity)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return None


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def pod_ready(pod: dict[str, Any]) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def _from_containers(pod: dict[str, Any]) -> tuple[str, str] | None:
    status = pod.get("status") or {}
    for cs in (
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        image = cs.get("image") or ""
        if reason in IMAGE_WAITING:
            # Not the kubelet's reason: it alternates (ErrImagePull, ImagePullBackOff).
            return IMAGE_PULL_FAILED, f"image {image} cannot be pulled"
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if reason == "CrashLoopBackOff" or (last and cs.get("restartCount")):
            # Between two back-offs the container runs (not ready): still the same crash.
            why = last.get("reason") or "exited"
            code = last.get("exitCode")
            return (
                PROXY_CRASHING,
                f"container {cs.get('name')} keeps exiting ({why}, exit code {code})",
            )
        if reason in START_WAITING:
            return PROXY_NOT_STARTING, f"{reason}: {_clip(waiting.get('message') or '')}".rstrip(
                ": "
            )
    return None


def _from_events(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    found: list[tuple[int, str]] = []
    for ev in events:
        reason = ev.get("reason") or ""
        message = ev.get("message") or ""
        if reason == "FailedMount" and "hostPath type check failed" in message:
            found.append((0, message[message.index("hostPath type check failed") :]))
        elif reason == "FailedCreatePodSandBox":
            # Its message carries a fresh sandbox id on every attempt: the reason only.
            found.append((1, "the pod sandbox cannot be created (FailedCreatePodSandBox)"))
        elif reason == "Unhealthy" and message.startswith("Readiness probe failed"):
            count = int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)
            if count >= UNHEALTHY_COUNT:
                found.append((2, message))
    if not found:
        return None
    rank, text = min(found)
    kind = (SOCKET_MISSING, PROXY_NOT_STARTING, PROXY_NOT_READY)[rank]
    return kind, _clip(text)


def pod_problem(pod: dict[str, Any], events: list[dict[str, Any]]) -> tuple[str, str]:
    """(reason, detail) for one pod that is not ready; `events` are that pod's."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return UNSCHEDULABLE, _clip(scheduled.get("message") or "no node can take the pod")
    found = [p for p in (_from_containers(pod), _from_events(events)) if p is not None]
    if found:
        return min(found, key=lambda p: ORDER.index(p[0]))
    if (pod.get("status") or {}).get("phase") == "Running":
        return STARTING, "running, not ready yet"
    return STARTING, "starting"


def node_problems(
    pods: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    nodes: Iterable[str],
) -> list[NodeProblem]:
    """One problem per selected node that has no ready proxy, sorted by node name.

    `pods`: the policy's proxy pods; `events`: Warning Events about pods (others are ignored);
    `nodes`: the nodes the policy selects."""
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        obj = ev.get("involvedObject") or {}
        if obj.get("kind") == "Pod" and obj.get("uid"):
            by_uid.setdefault(str(obj["uid"]), []).append(ev)
    by_node: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        node = pod_node(pod)
        if node is not None and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            by_node.setdefault(node, []).append(pod)
    problems = []
    for node in sorted(set(nodes)):
        here = by_node.get(node, [])
        if any(pod_ready(p) for p in here):
            continue
        if not here:
            problems.append(NodeProblem(node, NO_POD, "no proxy pod yet"))
            continue
        found = [pod_problem(p, by_uid.get(p["metadata"].get("uid", ""), [])) for p in here]
        reason, detail = min(found, key=lambda p: (ORDER.index(p[0]), p[1]))
        problems.append(NodeProblem(node, reason, detail))
    return problems


def describe(problems: Iterable[NodeProblem]) -> str:
    """`SocketMissing on node-a, node-b: hostPath type check failed: …; ProxyStarting on …`,
    the same failure on many nodes told once."""
    groups: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        groups.setdefault((p.reason, p.detail), []).append(p.node)
    parts = []
    for (reason, detail), nodes in sorted(
        groups.items(), key=lambda g: (ORDER.index(g[0][0]), g[0][1])
    ):
        listed = ", ".join(sorted(nodes)[:NODES_LISTED])
        if len(nodes) > NODES_LISTED:
            listed += f" and {len(nodes) - NODES_LISTED} more"
        parts.append(f"{reason} on {listed}: {detail}")
    return "; ".join(parts)
