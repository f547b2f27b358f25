"""A real, local Kubernetes control plane for tests and demos.

Starts etcd, kube-apiserver (RBAC, bearer-token auth), kube-controller-manager
(every controller, including the garbage collector and the DaemonSet
controller), kube-scheduler and kwok (which keeps fake Nodes Ready and marks
bound pods Running) from the binaries built by ``make controlplane``
(``$DSO_CACHE/bin``). Nothing runs containers: pods never start for real, but
every API object goes through real admission, validation, RBAC, scheduling and
garbage collection.

Usage from tests::

    with ControlPlane(bindir, tmp_path, nodes=3) as cp:
        cp.kubectl("apply", "-f", "manifest.yaml")

From a shell (repository root)::

    python -m tests.support.controlplane up --dir /tmp/cp

prints ``KUBECONFIG=...`` and runs until SIGINT/SIGTERM.

Only the standard library and the ``openssl`` and ``kubectl`` commands are used.
Component logs stay in ``<workdir>/logs`` after :meth:`ControlPlane.stop`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.support.processes import spawn_logged, stop_process

__all__ = ["ControlPlane", "ControlPlaneError", "default_bindir", "main"]

DEFAULT_CACHE = "/var/cache/docker-socket-operator"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"

# Start order; stop() goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneError(RuntimeError):
    """A component failed to start or the cluster never became ready."""


def default_bindir() -> Path:
    """``$DSO_CACHE/bin`` (default ``/var/cache/docker-socket-operator/bin``)."""
    return Path(os.environ.get("DSO_CACHE", DEFAULT_CACHE)) / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok.

    ``node_labels`` maps a node name (``kwok-node-<i>``) to extra labels for it.
    Every node is labelled ``type: kwok`` and annotated ``kwok.x-k8s.io/node:
    fake``; nodes carry no taints, so DaemonSet pods land on all of them.
    """

    def __init__(
        self,
        bindir: Path,
        workdir: Path,
        nodes: int = 3,
        node_labels: dict[str, dict[str, str]] | None = None,
        *,
        kubectl_bin: str | Path | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.bindir = Path(bindir).resolve()
        self.workdir = Path(workdir).resolve()
        self.nodes = nodes
        self.node_labels: dict[str, dict[str, str]] = dict(node_labels or {})
        self.startup_timeout = startup_timeout
        # The kubectl built beside the apiserver (same version) first; a machine's own otherwise.
        built = self.bindir / "kubectl"
        found = (
            kubectl_bin or (built if built.exists() else None) or shutil.which("kubectl") or built
        )
        self.kubectl_bin = str(found)

        self.pki = self.workdir / "pki"
        self.logdir = self.workdir / "logs"
        self.etcd_data = self.workdir / "etcd"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.ca_file = self.pki / "ca.crt"
        self.token = ""
        self.server = ""
        self.ports: dict[str, int] = {}

        self._tokens: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._ssl: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ API

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._procs)

    def start(self) -> None:
        """Start every component and wait until nodes are Ready."""
        if self._procs:
            raise ControlPlaneError("already started")
        for name in (*COMPONENTS, "kwok-stages.yaml"):
            if not (self.bindir / name).exists():
                raise ControlPlaneError(
                    f"{self.bindir / name} missing: run `make controlplane` first"
                )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(exist_ok=True)
        self._prepare_credentials()
        self.ports = {
            "etcd-client": _free_port(),
            "etcd-peer": _free_port(),
            "apiserver": _free_port(),
            "kwok": _free_port(),
        }
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        self._write_kubeconfigs()
        # A fresh cluster every time: stale objects would leak between runs.
        shutil.rmtree(self.etcd_data, ignore_errors=True)
        atexit.register(self.stop)  # no orphaned components if a test run aborts
        try:
            self._spawn("etcd", self._etcd_args())
            self._wait_http(
                f"http://127.0.0.1:{self.ports['etcd-client']}/health", "etcd", tls=False
            )
            self._start_apiserver()
            self._spawn("kube-controller-manager", self._kcm_args())
            self._spawn("kube-scheduler", self._scheduler_args())
            self._spawn("kwok", self._kwok_args())
            self._create_nodes()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL); logs are kept."""
        for name in reversed(COMPONENTS):
            self._terminate(name)
        atexit.unregister(self.stop)

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver only (same port, same etcd data)."""
        self._terminate("kube-apiserver")
        self._start_apiserver()

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises on failure when ``check``."""
        cmd = [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(
                proc.returncode, cmd, output=proc.stdout, stderr=proc.stderr
            )
        return proc

    def kubectl_json(self, *args: str) -> Any:
        """``kubectl <args> -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def check_alive(self) -> None:
        """Raise if a component has exited."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {proc.returncode}:\n{_tail(self.log_path(name))}"
                )

    def log_path(self, component: str) -> Path:
        return self.logdir / f"{component}.log"

    def node_names(self) -> list[str]:
        return [f"kwok-node-{i}" for i in range(self.nodes)]

    # ------------------------------------------------------- credentials

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")

    def _prepare_credentials(self) -> None:
        """CA, apiserver serving cert, service-account key pair, tokens (reused)."""
        self.pki.mkdir(parents=True, exist_ok=True)
        p = self.pki
        if not (p / "ca.crt").exists() or not (p / "ca.key").exists():
            self._openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                "-subj", "/CN=dso-test-ca", "-keyout", str(p / "ca.key"),
                "-out", str(p / "ca.crt"),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            )  # fmt: skip
            (p / "apiserver.crt").unlink(missing_ok=True)
        if not (p / "apiserver.crt").exists():
            ext = p / "apiserver.ext"
            ext.write_text(
                "basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
                "DNS:kubernetes.default.svc.cluster.local\n"
            )
            self._openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
                "-keyout", str(p / "apiserver.key"), "-out", str(p / "apiserver.csr"),
            )  # fmt: skip
            self._openssl(
                "x509", "-req", "-in", str(p / "apiserver.csr"), "-CA", str(p / "ca.crt"),
                "-CAkey", str(p / "ca.key"), "-CAcreateserial", "-days", "3650",
                "-extfile", str(ext), "-out", str(p / "apiserver.crt"),
            )  # fmt: skip
        if not (p / "sa.key").exists() or not (p / "sa.pub").exists():
            self._openssl("genrsa", "-out", str(p / "sa.key"), "2048")
            self._openssl("rsa", "-in", str(p / "sa.key"), "-pubout", "-out", str(p / "sa.pub"))

        tokens_file = p / "tokens.json"
        users = ("admin", "kube-controller-manager", "kube-scheduler", "kwok")
        tokens: dict[str, str] = {}
        if tokens_file.exists():
            tokens = json.loads(tokens_file.read_text())
        for user in users:
            tokens.setdefault(user, secrets.token_hex(24))
        tokens_file.write_text(json.dumps(tokens, indent=2))
        tokens_file.chmod(0o600)
        self._tokens = tokens
        self.token = tokens["admin"]
        # token,user,uid,"groups": every component is a cluster admin; the
        # controller manager runs without per-controller service accounts.
        lines = []
        for user in users:
            name = "admin" if user == "admin" else f"system:{user}"
            lines.append(f'{tokens[user]},{name},{user},"system:masters"')
        (p / "token-auth.csv").write_text("\n".join(lines) + "\n")
        self._ssl = ssl.create_default_context(cafile=str(p / "ca.crt"))

    def _kubeconfig(self, user: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "dso-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": user, "user": {"token": self._tokens[user]}}],
            "contexts": [
                {
                    "name": "dso-test",
                    "context": {"cluster": "dso-test", "user": user, "namespace": "default"},
                }
            ],
            "current-context": "dso-test",
            "preferences": {},
        }

    def _write_kubeconfigs(self) -> None:
        for user in self._tokens:
            path = self.kubeconfig if user == "admin" else self.workdir / f"{user}.kubeconfig"
            # JSON is YAML: kubectl and client libraries read it as a kubeconfig.
            path.write_text(json.dumps(self._kubeconfig(user), indent=2) + "\n")
            path.chmod(0o600)

    # --------------------------------------------------------- components

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd-client']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            "--name=default",
            f"--data-dir={self.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",  # test data: speed over durability
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        p = self.pki
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd-client']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={p}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--token-auth-file={p / 'token-auth.csv'}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # The `kubernetes` Endpoints cannot hold a loopback address.
            "--endpoint-reconciler-type=none",
            # Real nodes (tests/support/node.py) are reached by IP: no DNS knows their names.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            # Close watches on SIGTERM instead of waiting out the HTTP server's 60s
            # shutdown timeout (matters for restart_apiserver()).
            "--shutdown-watch-termination-grace-period=2s",
            "--profiling=false",
            # Every request of a ServiceAccount (the operator under test): what RBAC it needs.
            f"--audit-policy-file={self._audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking",
            "--v=1",
        ]

    @property
    def audit_log(self) -> Path:
        return self.logdir / "audit.log"

    def _audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.yaml"
        path.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
            "rules:\n  - level: Metadata\n    userGroups: [system:serviceaccounts]\n"
            "  - level: None\n"
        )
        return path

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log's events so far (requests made with ServiceAccount tokens)."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _kcm_args(self) -> list[str]:
        p = self.pki
        return [
            f"--kubeconfig={self.workdir / 'kube-controller-manager.kubeconfig'}",
            "--controllers=*",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--secure-port=0",
            "--v=1",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.workdir / 'kube-scheduler.kubeconfig'}",
            "--leader-elect=false",
            "--secure-port=0",
            "--v=1",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            # Stage definitions (node-initialize, heartbeat, pod-ready, ...):
            # the bare kwok binary has none built in. See mk/controlplane.mk.
            f"--config={self.bindir / 'kwok-stages.yaml'}",
            f"--kubeconfig={self.workdir / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.0.0.1",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
            "--node-lease-duration-seconds=40",
        ]

    def _start_apiserver(self) -> None:
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait_http(f"{self.server}/readyz", "kube-apiserver", tls=True)

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = self.log_path(name).open("ab")
        log.write(f"\n==== {time.strftime('%F %T')} starting {name}\n".encode())
        log.flush()
        self._logs[name] = log
        self._procs[name] = spawn_logged([str(self.bindir / name), *args], log, self.workdir)

    def _terminate(self, name: str, grace: float = 10.0) -> None:
        stop_process(self._procs.pop(name, None), grace)
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    # ---------------------------------------------------------- readiness

    def _deadline_loop(self, what: str, timeout: float | None = None) -> Iterator[None]:
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while time.monotonic() < deadline:
            self.check_alive()
            yield
            time.sleep(0.5)
        raise ControlPlaneError(f"timed out waiting for {what}")

    def _wait_http(self, url: str, component: str, *, tls: bool) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if tls else {}
        for _ in self._deadline_loop(f"{component} at {url}"):
            req = urllib.request.Request(url, headers=headers)
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(req, timeout=5, context=self._ssl if tls else None) as resp,
            ):
                if resp.status == 200:
                    return

    def _create_nodes(self) -> None:
        items = []
        for name in self.node_names():
            labels = {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **self.node_labels.get(name, {}),
            }
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": labels,
                        "annotations": {KWOK_ANNOTATION: "fake"},
                    },
                    "spec": {},
                    "status": {
                        "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                        "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    },
                }
            )
        if not items:  # nodes=0: real nodes join on their own (tests/support/node.py)
            return
        doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl("apply", "-f", "-", input=doc)

    def _wait_ready(self) -> None:
        wanted = set(self.node_names())
        for _ in self._deadline_loop("nodes to become Ready"):
            proc = self.kubectl("get", "nodes", "-o", "json", check=False)
            if proc.returncode == 0 and wanted <= _ready_nodes(json.loads(proc.stdout)):
                break
        # Pods need the namespace's default ServiceAccount (controller manager).
        for _ in self._deadline_loop("the default ServiceAccount"):
            if self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0:
                break


def _ready_nodes(node_list: Mapping[str, Any]) -> set[str]:
    ready = set()
    for node in node_list.get("items", []):
        for cond in node.get("status", {}).get("conditions", []):
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(node["metadata"]["name"])
    return ready


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.controlplane")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a control plane and run until SIGINT/SIGTERM")
    up.add_argument("--dir", type=Path, required=True, help="work directory (certs, logs)")
    up.add_argument("--bindir", type=Path, default=default_bindir())
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument(
        "--node-label",
        action="append",
        default=[],
        metavar="NODE:KEY=VALUE",
        help="extra label for one node (repeatable)",
    )
    args = parser.parse_args(argv)

    node_labels: dict[str, dict[str, str]] = {}
    for spec in args.node_label:
        node, _, kv = spec.partition(":")
        key, _, value = kv.partition("=")
        node_labels.setdefault(node, {})[key] = value

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cp = ControlPlane(args.bindir, args.dir, nodes=args.nodes, node_labels=node_labels)
    try:
        cp.start()
    except ControlPlaneError as exc:
        print(f"control plane failed to start: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"KUBECONFIG={cp.kubeconfig}", flush=True)
        print(f"# server {cp.server}; logs in {cp.logdir}; Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            cp.check_alive()
    except ControlPlaneError as exc:
        print(f"control plane died: {exc}", file=sys.stderr)
        return 1
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
