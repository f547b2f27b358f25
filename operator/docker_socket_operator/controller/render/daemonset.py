"""The DaemonSet: one hardened proxy pod per matching node, next to that node's socket."""

from __future__ import annotations

import posixpath
from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.controller.render.common import (
    CONFIG_HASH_ANNOTATION,
    POLICY_FILE,
    PROXY_PORT,
    RenderOptions,
    common_labels,
    object_meta,
    selector_labels,
    stable_hash,
)

POLICY_DIR = "/etc/docker-socket-proxy"
SOCKET_DIR = "/run/docker-socket-proxy"


def socket_mount_path(spec: DockerSocketPolicySpec) -> str:
    return posixpath.join(SOCKET_DIR, posixpath.basename(spec.socket.path) or "docker.sock")


def proxy_args(spec: DockerSocketPolicySpec, options: RenderOptions) -> list[str]:
    return [
        "proxy",
        "--listen",
        f"0.0.0.0:{PROXY_PORT}",
        "--socket",
        socket_mount_path(spec),
        "--policy",
        f"{POLICY_DIR}/{POLICY_FILE}",
        "--metrics-listen",
        f"0.0.0.0:{options.metrics_port}",
    ]


def _resources(spec: DockerSocketPolicySpec) -> dict[str, Any]:
    dumped = spec.resources.model_dump(mode="json", exclude_none=True)
    return {kind: values for kind, values in dumped.items() if values}


def pod_config_hash(spec: DockerSocketPolicySpec, image: str, options: RenderOptions) -> str:
    """Hash of what shapes the pod, deliberately NOT the rules: a rule change only rewrites
    the ConfigMap, which the proxy reloads in place without dropping open streams."""
    return stable_hash(
        {
            "image": image,
            "socket": spec.socket.path,
            "metricsPort": options.metrics_port,
            "nodeSelector": spec.nodeSelector,
            "tolerations": [t.model_dump(mode="json", exclude_none=True) for t in spec.tolerations],
            "resources": _resources(spec),
            "seLinuxType": spec.seLinuxType,
            "socketGroup": spec.socket.group,
            "runAsRoot": spec.runAsRoot,
        }
    )[:16]


# The image's own user (distroless "nonroot"); the socket is opened through its group.
PROXY_UID = 65532


def _pod_security_context(spec: DockerSocketPolicySpec) -> dict[str, Any]:
    ctx: dict[str, Any]
    if spec.runAsRoot:
        # Asked for explicitly (and reported as a status warning): a socket only root can open.
        # No capabilities, no privilege escalation, read-only root filesystem all still hold.
        ctx = {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False}
    else:
        # The socket is root:<group> 0660 on most hosts: the group is all the proxy needs.
        ctx = {"runAsUser": PROXY_UID, "runAsGroup": PROXY_UID, "runAsNonRoot": True}
        if spec.socket.group is not None:
            ctx["supplementalGroups"] = [spec.socket.group]
    ctx["seccompProfile"] = {"type": "RuntimeDefault"}
    if spec.seLinuxType:
        ctx["seLinuxOptions"] = {"type": spec.seLinuxType}
    return ctx


def _container(spec: DockerSocketPolicySpec, image: str, options: RenderOptions) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "proxy",
        "image": image,
        "imagePullPolicy": options.image_pull_policy,
        "args": proxy_args(spec, options),
        "ports": [
            {"name": "docker", "containerPort": PROXY_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": options.metrics_port, "protocol": "TCP"},
        ],
        # Ready = the daemon's socket answers; not ready takes the node's proxy out of the
        # Service (internalTrafficPolicy Local: clients on that node get a refused connection).
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            # The socket file only (not its directory: /run holds other daemons' sockets).
            # Read-only stops the file being replaced, NOT the API behind it being used.
            {"name": "docker-socket", "mountPath": socket_mount_path(spec), "readOnly": True},
            # A directory, never subPath: kubelet swaps the ..data symlink on update and the
            # proxy sees the new policy; subPath mounts never update.
            {"name": "policy", "mountPath": POLICY_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    return container


def render_daemonset(
    policy: dict[str, Any],
    namespace: str,
    spec: DockerSocketPolicySpec,
    image: str,
    options: RenderOptions,
) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    meta = object_meta(policy, namespace, options)
    pod_spec: dict[str, Any] = {
        # The proxy never talks to the Kubernetes API: no token in the pod at all.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security_context(spec),
        "containers": [_container(spec, image, options)],
        "volumes": [
            {
                "name": "docker-socket",
                "hostPath": {"path": spec.socket.path, "type": "Socket"},
            },
            {"name": "policy", "configMap": {"name": meta["name"], "defaultMode": 0o444}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        ],
    }
    if spec.nodeSelector:
        pod_spec["nodeSelector"] = dict(spec.nodeSelector)
    if spec.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(mode="json", exclude_none=True) for t in spec.tolerations
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(name)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": common_labels(name, options),
                    "annotations": {CONFIG_HASH_ANNOTATION: pod_config_hash(spec, image, options)},
                },
                "spec": pod_spec,
            },
        },
    }
