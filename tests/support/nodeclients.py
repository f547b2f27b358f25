"""Client pods on a real node: busybox plus the docker CLI, run through `kubectl exec`.

A client reaches a policy's proxy the way a user's pod does, through the Service name in
the policy's status (`tcp://<service>.<namespace>.svc:2375`); with no cluster DNS in the test
cluster, the name resolves through the pod's /etc/hosts (hostAliases, set to the Service's
cluster IP), so every connection still goes through kube-proxy and the NetworkPolicy.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import urlsplit

from tests.support.controlplane import ControlPlane
from tests.support.node import RealNode, pod_manifest
from tests.support.node_images import CLIENT_IMAGE
from tests.support.waiting import wait_for

# Long enough for a proxy that answers; a refused or dropped connection fails well before.
CALL_TIMEOUT = 20


class Clients:
    def __init__(self, cp: ControlPlane, node: RealNode) -> None:
        self.cp = cp
        self.node = node

    def namespace(self, name: str) -> None:
        self.cp.kubectl("create", "namespace", name, check=False)

    def service_ip(self, endpoint: str) -> str:
        host = urlsplit(endpoint).hostname or ""
        service, namespace = host.split(".")[:2]
        ip: str = self.cp.kubectl(
            "get", "service", service, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
        ).stdout
        return ip

    def start(
        self,
        name: str,
        namespace: str,
        labels: dict[str, str],
        endpoint: str,
        *,
        node: RealNode | None = None,
    ) -> tuple[str, str]:
        """Create a client pod on ``node`` (default: the first) without waiting; returns
        (namespace, name)."""
        self.namespace(namespace)
        host = urlsplit(endpoint).hostname or ""
        manifest = pod_manifest(
            name,
            namespace,
            CLIENT_IMAGE,
            labels=labels,
            node=(node or self.node).name,
            host_aliases={host: self.service_ip(endpoint)},
        )
        # The pod of that name an earlier test deleted (--wait=false) may still be going: an
        # apply would then try to change its immutable spec.
        self.cp.kubectl(
            "wait", "--for=delete", f"pod/{name}", "-n", namespace, "--timeout=90s", check=False,
            timeout=120,
        )  # fmt: skip
        self.cp.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        return namespace, name

    def wait_running(self, *pods: tuple[str, str], timeout: float = 120) -> None:
        def running() -> bool:
            for namespace, name in pods:
                pod = self.cp.kubectl_json("get", "pod", name, "-n", namespace)
                if pod.get("status", {}).get("phase") != "Running":
                    return False
            return True

        wait_for(running, timeout, f"client pods {pods} Running")

    def exec(
        self, pod: tuple[str, str], *cmd: str, timeout: float = CALL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        namespace, name = pod
        return self.cp.kubectl(
            "exec", "-n", namespace, name, "--", "timeout", str(timeout), *cmd,
            check=False, timeout=timeout + 30,
        )  # fmt: skip

    def docker(
        self, pod: tuple[str, str], endpoint: str, *args: str, timeout: float = CALL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI inside the pod, pointed at the policy's endpoint."""
        return self.exec(pod, "docker", "-H", endpoint, *args, timeout=timeout)

    def delete(self, *pods: tuple[str, str]) -> None:
        for namespace, name in pods:
            self.cp.kubectl(
                "delete", "pod", name, "-n", namespace, "--wait=false", "--grace-period=0",
                check=False,
            )  # fmt: skip


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr).strip()


def pod_status(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cp.kubectl_json("get", "pods", "-n", namespace, "-l", selector)[
        "items"
    ]
    return items
