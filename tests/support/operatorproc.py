"""The operator as a subprocess against a test control plane, plus the seed policies.

Used by tests/integration/test_operator_*.py (and the unit tests reuse the seed policies).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]

# Node labels for a 3-node kwok cluster: two nodes run Docker, one of them is the "edge".
NODE_LABELS = {
    "kwok-node-0": {"dockersocket.io/docker": "true", "dockersocket.io/role": "edge"},
    "kwok-node-1": {"dockersocket.io/docker": "true"},
}
DOCKER_NODES = {"dockersocket.io/docker": "true"}


def _client(namespace: str, app: str) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
    }


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dockersocket.io/v1alpha1",
        "kind": "DockerSocketPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def seed_policies() -> dict[str, dict[str, Any]]:
    """The five seed scenarios, keyed by policy name."""
    return {
        # An n8n automation bot: see containers, start/stop/restart them, pull images.
        "n8n-bot": policy(
            "n8n-bot",
            {
                "nodeSelector": {"dockersocket.io/role": "edge"},
                "clients": [_client("n8n", "n8n")],
                "rules": [
                    {"preset": "read-only"},
                    {"allow": ["containers.start", "containers.stop", "containers.restart"]},
                    {"allow": ["images.create"]},
                ],
                "audit": "all",
            },
        ),
        # Caddy (docker-proxy plugin) discovering labelled containers.
        "caddy": policy(
            "caddy",
            {
                "nodeSelector": DOCKER_NODES,
                "clients": [_client("ingress", "caddy")],
                "rules": [{"preset": "discovery"}],
                "visibility": {"containers": {"labels": {"caddy": "*"}}},
            },
        ),
        # A watchdog that may restart exactly one container.
        "restart-gateway": policy(
            "restart-gateway",
            {
                "nodeSelector": DOCKER_NODES,
                "clients": [_client("ops", "watchdog")],
                "rules": [
                    {"allow": ["containers.restart"], "containers": {"names": ["mcp-gateway"]}}
                ],
            },
        ),
        # docker compose for one project only.
        "compose-shop": policy(
            "compose-shop",
            {
                "nodeSelector": DOCKER_NODES,
                "clients": [_client("ci", "deployer")],
                "rules": [{"preset": "compose-admin", "containers": {"composeProject": "shop"}}],
            },
        ),
        # A web terminal manager: create and attach to sandboxes, never exec into anything.
        "terminals": policy(
            "terminals",
            {
                "clients": [_client("terminals", "terminal-manager")],
                "rules": [
                    {"deny": ["exec.*"]},
                    {
                        "allow": [
                            "containers.create",
                            "containers.start",
                            "containers.attach",
                            "containers.attach-websocket",
                            "containers.resize",
                            "containers.wait",
                            "containers.inspect",
                            "containers.delete",
                        ],
                        "create": {"images": ["registry.example/terminals/*"]},
                    },
                ],
            },
        ),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OperatorProcess:
    """`docker-socket-operator operator` in a subprocess, logs in `<workdir>/operator-N.log`."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        namespace: str,
        *,
        image: str = "docker-socket-operator:test",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.namespace = namespace
        self.image = image
        self.extra_args = extra_args
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"operator-{self.health_port}.log"
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        env.pop("POD_NAMESPACE", None)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "docker_socket_operator.controller.commands", "operator",
                "--namespace", self.namespace, "--image", self.image,
                "--health-listen", f"127.0.0.1:{self.health_port}",
                *self.extra_args,
            ],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(json.load(resp).get("ready"))
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.logs()}")
            if self.ready():
                return
            time.sleep(0.3)
        raise TimeoutError(f"operator not ready:\n{self.logs()}")

    @contextlib.contextmanager
    def running(self) -> Iterator[OperatorProcess]:
        """Started and ready for the body of the `with`, stopped after it whatever happened."""
        self.start()
        try:
            self.wait_ready()
            yield self
        finally:
            self.stop()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        code = self.proc.returncode
        self.proc = None
        return code

    def logs(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-20000:]
        return ""

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: dict[str, Any] = cond
            return found
    return None


class Kube:
    """kubectl against a ControlPlane, with the helpers the operator tests need."""

    def __init__(self, cp: Any, namespace: str) -> None:
        self.cp = cp
        self.namespace = namespace

    def apply(self, *docs: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        result: subprocess.CompletedProcess[str] = self.cp.kubectl(
            "apply", "--server-side", "--field-manager=tests", "-f", "-", input=text, check=check
        )
        return result

    def get(self, kind: str, name: str, namespaced: bool = True) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespaced:
            args += ["-n", self.namespace]
        proc = self.cp.kubectl(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise RuntimeError(proc.stderr)
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj

    def policy(self, name: str) -> dict[str, Any] | None:
        return self.get("dockersocketpolicy", name, namespaced=False)

    def children(self, policy_name: str) -> dict[str, dict[str, Any]]:
        """kind -> object, for the labelled children of one policy."""
        out = self.cp.kubectl_json(
            "get", "configmaps,daemonsets,services,networkpolicies,pods",
            "-n", self.namespace, "-l", f"dockersocket.io/policy={policy_name}",
        )  # fmt: skip
        result: dict[str, dict[str, Any]] = {}
        for item in out["items"]:
            if item["kind"] == "Pod":
                result.setdefault("Pods", {"items": []})["items"].append(item)
            else:
                result[item["kind"]] = item
        return result

    def resource_versions(self) -> dict[str, str]:
        """kind/name -> resourceVersion for every policy and every child."""
        out = self.cp.kubectl_json(
            "get", "configmaps,daemonsets,services,networkpolicies",
            "-n", self.namespace, "-l", "app.kubernetes.io/managed-by=docker-socket-operator",
        )  # fmt: skip
        versions = {
            f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"]
            for i in out["items"]
        }
        for item in self.cp.kubectl_json("get", "dockersocketpolicies")["items"]:
            versions[f"Policy/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
        return versions

    def wait_ready(self, name: str, nodes: int, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.policy(name)
            cond = condition(obj or {}, "Ready")
            ok = (
                obj is not None
                and cond is not None
                and cond["status"] == "True"
                and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
                and obj["status"].get("nodesReady") == f"{nodes}/{nodes}"
            )
            return obj if ok else None

        result: dict[str, Any] = wait_for(ready, timeout, f"policy {name} Ready {nodes}/{nodes}")
        return result


def install_crds(cp: Any) -> None:
    cp.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))

    # Not `kubectl wait --for condition=established`: it fails at once ("status.conditions
    # accessor error: <nil>") when it reads the CRD before the API server set any condition.
    def established() -> bool:
        crd = cp.kubectl_json("get", "crd", "dockersocketpolicies.dockersocket.io")
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, 60, "the DockerSocketPolicy CRD Established")
