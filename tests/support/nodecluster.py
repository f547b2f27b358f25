"""A control plane, a private dockerd, one real node and the operator, brought up together
(the `node` suite's session fixture and `make demo` both use this).

The node's dockerd socket is root:2375 0660, as a distribution's docker group would own it:
the operator's proxy pod gets that group, never root."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.controlplane import COMPONENTS, ControlPlane, ControlPlaneError, default_bindir
from tests.support.daemons import Daemon, DaemonUnavailable, start_dockerd
from tests.support.node import NodeUnavailable, RealNode, missing_prerequisites
from tests.support.node_images import PROXY_IMAGE, ImageUnavailable, node_images
from tests.support.nodeclients import Clients
from tests.support.operatorproc import Kube, OperatorProcess, install_crds

OPERATOR_NS = "dso-system"
NODE_NAME = "dso-node-0"
NODE_LABELS = {"dockersocket.io/docker": "true", "dockersocket.io/role": "edge"}
SOCKET_GID = 2375


@dataclass
class NodeCluster:
    cp: ControlPlane
    node: RealNode
    dockerd: Daemon
    operator: OperatorProcess
    kube: Kube
    clients: Clients
    socket_gid: int = SOCKET_GID
    # What the run measured (seconds, reachability results), printed at its end.
    results: dict[str, Any] = field(default_factory=dict)


def start_node_cluster(stack: contextlib.ExitStack, workdir: Path) -> NodeCluster:
    """Everything started is registered on ``stack`` (closed in reverse: operator, node,
    dockerd, control plane). Raises NodeUnavailable saying why a part cannot run here."""
    bindir = default_bindir()
    problems = [f"{bindir / c} missing (make controlplane)" for c in COMPONENTS
                if not (bindir / c).exists()]  # fmt: skip
    problems += missing_prerequisites(bindir)
    if problems:
        raise NodeUnavailable("; ".join(problems))
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        images = node_images()
    except ImageUnavailable as exc:
        raise NodeUnavailable(f"node images: {exc}") from exc
    results["images, built or from the cache (s)"] = round(time.monotonic() - t0, 1)
    cp = ControlPlane(bindir, workdir / "cp", nodes=0)
    try:
        cp.start()
    except ControlPlaneError as exc:
        raise NodeUnavailable(f"control plane: {exc}") from exc
    stack.callback(cp.stop)
    install_crds(cp)
    cp.kubectl("create", "namespace", OPERATOR_NS)
    try:
        dockerd = start_dockerd()
    except DaemonUnavailable as exc:
        raise NodeUnavailable(f"dockerd: {exc}") from exc
    stack.callback(dockerd.stop)
    os.chown(dockerd.socket_path, 0, SOCKET_GID)
    os.chmod(dockerd.socket_path, 0o660)
    node = RealNode(cp, NODE_NAME, images, labels=NODE_LABELS)
    t1 = time.monotonic()
    node.start()  # stops what it started before raising
    stack.callback(node.stop)
    results["node start: containerd, image import, kubelet Ready, kube-proxy, kube-router (s)"] = (
        round(time.monotonic() - t1, 1)
    )
    opdir = workdir / "operator"
    opdir.mkdir(parents=True, exist_ok=True)
    operator = OperatorProcess(cp.kubeconfig, opdir, OPERATOR_NS, image=PROXY_IMAGE)
    operator.start()
    stack.callback(operator.stop)
    operator.wait_ready()
    kube = Kube(cp, OPERATOR_NS)
    return NodeCluster(cp, node, dockerd, operator, kube, Clients(cp, node), results=results)


def node_policy(
    cluster: NodeCluster,
    name: str,
    namespace: str,
    labels: dict[str, str],
    rules: list[dict[str, Any]],
    *,
    socket_path: str | None = None,
) -> dict[str, Any]:
    """A policy for the node's dockerd, one client entry (namespace AND labels)."""
    return {
        "apiVersion": "dockersocket.io/v1alpha1",
        "kind": "DockerSocketPolicy",
        "metadata": {"name": name},
        "spec": {
            "socket": {
                "path": socket_path or cluster.dockerd.socket_path,
                "group": cluster.socket_gid,
            },
            "clients": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "podSelector": {"matchLabels": labels},
                }
            ],
            "rules": rules,
        },
    }


def proxy_pods(cluster: NodeCluster, policy: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.cp.kubectl_json(
        "get", "pods", "-n", OPERATOR_NS, "-l", f"dockersocket.io/policy={policy}"
    )["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]
