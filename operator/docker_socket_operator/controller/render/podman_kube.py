"""A Pod and its ConfigMap for `podman kube play`: the proxy on a Podman host, no Kubernetes.

The same policy document the operator reads; the ConfigMap holds the same expanded policy
file the operator's ConfigMap holds. What Kubernetes gives the DaemonSet (a node's socket, a
Service, a NetworkPolicy) becomes two host-side choices here: which Podman socket the proxy
talks to, and the host address its API port is published on (loopback by default: the
published port is the only way in, and anyone who reaches it gets what the policy allows).

Not rendered, on purpose: probes (Podman runs an httpGet probe as `curl` inside the
container, and the image has no curl or shell), `nodeSelector`, `tolerations` and `clients`
(there is no scheduler or NetworkPolicy on one host).
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.controller.render.common import (
    POLICY_FILE,
    PROXY_PORT,
    RenderOptions,
    child_name,
    common_labels,
)
from docker_socket_operator.controller.render.configmap import render_configmap
from docker_socket_operator.controller.render.daemonset import (
    POLICY_DIR,
    proxy_args,
    socket_mount_path,
)
from docker_socket_operator.controller.validate import expand, parse_spec
from docker_socket_operator.policy.types import PolicyError

ROOTFUL_SOCKET = "/run/podman/podman.sock"
# Rootless Podman's socket is $XDG_RUNTIME_DIR/podman/podman.sock; the caller resolves it
# (kube play does not expand variables).
ROOTLESS_SOCKET_IN_RUNTIME_DIR = "podman/podman.sock"
LOOPBACK = "127.0.0.1"
NONROOT_ID = 65532


@dataclass(frozen=True)
class PodmanKubeOptions:
    """Host-side choices: the Podman API socket on the host, and where the proxy's API port
    is published (host address, host port; no port: the policy's spec.port)."""

    socket_path: str = ROOTFUL_SOCKET
    publish: tuple[str, int | None] = (LOOPBACK, None)

    def __post_init__(self) -> None:
        if not self.socket_path.startswith("/") or any(c.isspace() for c in self.socket_path):
            raise PolicyError(f"podman socket must be an absolute path, got {self.socket_path!r}")
        host, port = self.publish
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise PolicyError(f"publish address must be an IP address, got {host!r}") from None
        if port is not None and not 1 <= port <= 65535:
            raise PolicyError(f"publish port must be 1-65535, got {port}")


def podman_socket_path(choice: str, environ: Mapping[str, str]) -> str:
    """`rootful`, `rootless` (under the caller's $XDG_RUNTIME_DIR) or an absolute path."""
    if choice == "rootful":
        return ROOTFUL_SOCKET
    if choice == "rootless":
        runtime_dir = environ.get("XDG_RUNTIME_DIR", "")
        if not runtime_dir.startswith("/"):
            raise PolicyError(
                "--podman-socket rootless needs $XDG_RUNTIME_DIR (run it as the rootless user) "
                "or give the socket's path"
            )
        return posixpath.join(runtime_dir, ROOTLESS_SOCKET_IN_RUNTIME_DIR)
    if choice.startswith("/"):
        return choice
    raise PolicyError(
        f"--podman-socket: expected rootful, rootless or an absolute path, got {choice!r}"
    )


def _security_context(spec: DockerSocketPolicySpec) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if spec.socket.group is not None and not spec.runAsRoot:
        # A socket group (a SocketGroup= drop-in on podman.socket): the image's own user.
        ctx.update(runAsUser=NONROOT_ID, runAsGroup=NONROOT_ID, runAsNonRoot=True)
    else:
        # Podman's sockets are 0660 root:root (rootful) or owned by the user (rootless, where
        # uid 0 in the pod IS that user). The owner opens it without any capability, so uid 0
        # with every capability dropped, no privilege escalation and a read-only root.
        ctx.update(runAsUser=0, runAsGroup=0)
    if spec.seLinuxType:
        # SELinux hosts: container_t may not connect to the runtime's socket (spc_t may).
        ctx["seLinuxOptions"] = {"type": spec.seLinuxType}
    return ctx


def render_pod(
    policy: dict[str, Any],
    spec: DockerSocketPolicySpec,
    image: str,
    options: RenderOptions,
    podman: PodmanKubeOptions,
) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    host_ip, host_port = podman.publish[0], podman.publish[1] or spec.port
    # The proxy's view: the host's Podman socket, mounted under its own name.
    spec = spec.model_copy(
        update={"socket": spec.socket.model_copy(update={"path": podman.socket_path})}
    )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Always",
        "containers": [
            {
                "name": "proxy",
                "image": image,
                "imagePullPolicy": options.image_pull_policy,
                "args": proxy_args(spec, options),
                # Only the API port leaves the pod; /metrics stays inside (no hostPort).
                "ports": [
                    {
                        "name": "docker",
                        "containerPort": PROXY_PORT,
                        "hostIP": host_ip,
                        "hostPort": host_port,
                        "protocol": "TCP",
                    }
                ],
                "securityContext": _security_context(spec),
                "volumeMounts": [
                    {"name": "podman-socket", "mountPath": socket_mount_path(spec)},
                    {"name": "policy", "mountPath": POLICY_DIR, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "podman-socket", "hostPath": {"path": podman.socket_path, "type": "Socket"}},
            {
                "name": "policy",
                "configMap": {"name": child_name(name), "items": [_item()]},
            },
        ],
    }
    if spec.socket.group is not None and not spec.runAsRoot:
        pod_spec["securityContext"] = {"supplementalGroups": [spec.socket.group]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": child_name(name), "labels": common_labels(name, options)},
        "spec": pod_spec,
    }


def _item() -> dict[str, str]:
    return {"key": POLICY_FILE, "path": POLICY_FILE}


def render_podman_kube(
    policy: dict[str, Any],
    image: str,
    options: RenderOptions | None = None,
    podman: PodmanKubeOptions | None = None,
) -> list[dict[str, Any]]:
    """ConfigMap then Pod, the order `podman kube play` needs (the Pod mounts the ConfigMap).

    Raises PolicyError when the spec does not parse; call `validate_policy` first to also
    catch what only the compiler sees.
    """
    opts = options or RenderOptions()
    host = podman or PodmanKubeOptions()
    spec = parse_spec(policy)
    configmap = render_configmap(policy, "", expand(spec), opts)
    configmap["metadata"] = {
        "name": configmap["metadata"]["name"],
        "labels": configmap["metadata"]["labels"],
    }
    return [configmap, render_pod(policy, spec, image, opts, host)]


def refuse_shared_host_ports(objects: list[dict[str, Any]]) -> None:
    """Two pods publishing the same host address and port: the second `kube play` would fail
    half-way, so the render refuses the set instead (PolicyError)."""
    seen: dict[tuple[str, int], str] = {}
    for obj in objects:
        if obj.get("kind") != "Pod":
            continue
        for ctr in obj["spec"]["containers"]:
            for port in ctr.get("ports", []):
                key = (port["hostIP"], port["hostPort"])
                other = seen.setdefault(key, obj["metadata"]["name"])
                if other != obj["metadata"]["name"]:
                    raise PolicyError(
                        f"pods {other} and {obj['metadata']['name']} would both publish "
                        f"{key[0]}:{key[1]}: give the policies different spec.port values, or "
                        "render them one at a time with --publish"
                    )
