"""Which nodes a policy's proxies belong on, judged from the policy (not from the DaemonSet).

The DaemonSet's own counts say where IT wants pods; a DaemonSet narrowed by a hand edit
would report 2/2 where the policy matches 3 nodes. Status counts these nodes instead.
"""

from __future__ import annotations

from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec, Toleration

# Tolerations the DaemonSet controller adds to every daemon pod by itself.
DAEMONSET_TOLERATIONS = (
    Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/disk-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/memory-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/pid-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule"),
)


def tolerates(toleration: Toleration, taint: dict[str, Any]) -> bool:
    if toleration.effect and toleration.effect != taint.get("effect"):
        return False
    if toleration.operator == "Exists":
        return not toleration.key or toleration.key == taint.get("key")
    return toleration.key == taint.get("key") and (toleration.value or "") == (
        taint.get("value") or ""
    )


def node_matches(node: dict[str, Any], spec: DockerSocketPolicySpec) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    if any(labels.get(key) != value for key, value in spec.nodeSelector.items()):
        return False
    tolerations = (*spec.tolerations, *DAEMONSET_TOLERATIONS)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule only steers the scheduler
        if not any(tolerates(t, taint) for t in tolerations):
            return False
    return True


def matching_nodes(nodes: list[dict[str, Any]], spec: DockerSocketPolicySpec) -> list[str]:
    return sorted(n["metadata"]["name"] for n in nodes if node_matches(n, spec))
