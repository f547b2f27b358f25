"""A real Kubernetes node for the tests: containerd, kubelet, kube-proxy and kube-router's
NetworkPolicy firewall, joined to a :class:`~tests.support.controlplane.ControlPlane`.

Layout (everything under one work directory, everything stopped by PID on :meth:`stop`):

- a network namespace of the node's own (``tests.support.netns``) holding its IP, the pod
  bridge, the pods' links, kube-proxy's and kube-router's iptables chains and ipsets: deleting
  the namespace removes all of them, the host's own rules are never touched;
- a private containerd (own root, state, socket, runc root; snapshotter overlayfs where the
  kernel mounts it here, else native; ``restrict_oom_score_adj`` because this sandbox cannot
  lower a process's OOM score) with the images of ``tests.support.node_images`` imported into
  its ``k8s.io`` namespace and the local pause image as ``sandbox_image``;
- kubelet (cgroupfs, no QoS cgroups: this kernel mounts cgroup v1), kube-proxy (iptables) and
  ``kube-router --run-firewall`` only, all run with ``nsenter --net`` so that they share the
  host's mount namespace (kubelet's volume mounts must be visible to containerd);
- bridge + host-local CNI from Debian's containernetworking-plugins.

The control plane stays on the host's loopback; a relay thread makes the same 127.0.0.1:port
answer inside the node's namespace. The apiserver reaches the kubelet (logs, exec) over the
veth pair. Missing binaries or a kernel that refuses raise :class:`NodeUnavailable`, whose
message the fixtures skip with.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from tests.support.controlplane import ControlPlane, default_bindir
from tests.support.daemons import pids_naming
from tests.support.netns import LoopbackRelay, NetnsError, create_namespace, delete_namespace, ip
from tests.support.netns import nsenter as nsenter_prefix
from tests.support.node_images import PAUSE_IMAGE, NodeImages
from tests.support.processes import spawn_logged, stop_process
from tests.support.waiting import wait_for

NODE_BINARIES = ("kubelet", "kube-proxy", "kube-router")
HOST_TOOLS = ("containerd", "ctr", "runc", "nsenter", "ip", "iptables", "ipset", "mount")
CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
CNI_RESULTS = Path("/var/lib/cni/results")
CLUSTER_CIDR = "10.244.0.0/16"
# Seconds between the kubelet's pod syncs; a ConfigMap change reaches a pod's volume on the
# next one (upstream default 1m; shorter keeps the suite quick, the mechanism is the same).
KUBELET_SYNC = "10s"


class NodeUnavailable(RuntimeError):
    """A real node cannot run on this machine; the message says why."""


def missing_prerequisites(bindir: Path | None = None) -> list[str]:
    """What stops a node starting here, in words (empty: nothing)."""
    bindir = bindir or default_bindir()
    problems = []
    if os.geteuid() != 0:
        problems.append("a node needs root")
    for name in NODE_BINARIES:
        if not (bindir / name).exists():
            problems.append(f"{bindir / name} missing (make node-bins)")
    for tool in HOST_TOOLS:
        if shutil.which(tool) is None:
            problems.append(f"{tool} not installed (make node-deps)")
    for plugin in CNI_PLUGINS:
        if not (CNI_DIR / plugin).exists():
            problems.append(
                f"{CNI_DIR / plugin} missing (apt-get install containernetworking-plugins)"
            )
    return problems


def overlay_works(scratch: Path) -> bool:
    """Whether the kernel mounts overlayfs on this filesystem (not on every sandbox's /tmp)."""
    dirs = {n: scratch / n for n in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    proc = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
        capture_output=True,
        check=False,
    )
    if proc.returncode == 0:
        subprocess.run(["umount", str(dirs["merged"])], capture_output=True, check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return proc.returncode == 0


def _free_subnet_octet(start: int) -> int:
    """A third octet X such that 10.201.X.0/24 is not routed on the host yet."""
    for offset in range(250):
        octet = (start + offset) % 250 + 1
        if not ip("route", "show", f"10.201.{octet}.0/24", check=False).stdout.strip():
            return octet
    raise NodeUnavailable("no free 10.201.X.0/24 subnet for the node's veth pair")


class RealNode:
    """One real node named ``name``, labelled ``labels``, in ``workdir`` (kept short: unix
    socket paths live there)."""

    def __init__(
        self,
        cp: ControlPlane,
        name: str,
        images: NodeImages,
        *,
        labels: Mapping[str, str] | None = None,
        workdir: Path | None = None,
        bindir: Path | None = None,
    ) -> None:
        self.cp = cp
        self.name = name
        self.images = images
        self.labels = dict(labels or {})
        self.bindir = bindir or default_bindir()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dso-n-", dir="/tmp"))
        self.logdir = self.workdir / "logs"
        self.sock = self.workdir / "containerd.sock"
        self.octet = 0
        self.netns = ""
        self.host_if = ""
        self.node_ip = ""
        self.pod_subnet = ""
        self.snapshotter = ""
        self.timings: dict[str, float] = {}
        self._relay: LoopbackRelay | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        problems = missing_prerequisites(self.bindir)
        if problems:
            raise NodeUnavailable("; ".join(problems))
        self.logdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            self._network()
            self._containerd()
            self._import_images()
            self.timings["containerd+images"] = time.monotonic() - t0
            self._kubelet()
            self.timings["kubelet Ready"] = time.monotonic() - t0
            self._kube_proxy()
            self._kube_router()
            self.timings["node up"] = time.monotonic() - t0
        except TimeoutError as exc:
            # A component that never came up: the node cannot run here; say which and why.
            tails = "\n".join(f"--- {name}:\n{self.log(name, 15)}" for name in list(self._procs))
            self.stop()
            raise NodeUnavailable(f"{exc}\n{tails}") from exc
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in ("kube-router", "kube-proxy", "kubelet"):
            self._terminate(name)
        self._remove_containers()
        self._terminate("containerd")
        self._kill_leftovers()
        self._unmount_below()
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self.netns:
            delete_namespace(self.netns, self.host_if)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            # The Node object: a later session's cluster is fresh anyway, this one may go on.
            self.cp.kubectl("delete", "node", self.name, "--wait=false", check=False, timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RealNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.sock), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def in_netns(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a host command inside the node's network namespace (iptables, ipset, curl)."""
        return subprocess.run(
            [*nsenter_prefix(self.netns), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log(self, component: str, lines: int = 40) -> str:
        try:
            text = (self.logdir / f"{component}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise NodeUnavailable(f"{name} exited {proc.returncode}:\n{self.log(name)}")

    # ------------------------------------------------------------------ parts

    def _network(self) -> None:
        self.octet = _free_subnet_octet(os.getpid())
        self.netns = f"dso-node-{self.octet}"
        self.host_if = f"dsoh{self.octet}"
        host_ip = f"10.201.{self.octet}.1"
        self.node_ip = f"10.201.{self.octet}.2"
        # Pods live only inside this namespace: their subnet can be the same on every node.
        self.pod_subnet = f"10.244.{self.octet}.0/24"
        try:
            create_namespace(self.netns, self.host_if, host_ip, self.node_ip, 24)
        except NetnsError as exc:
            self.netns = ""
            raise NodeUnavailable(f"cannot make the node's network namespace: {exc}") from exc
        # Pods reach the Service's cluster IP through this namespace's routing.
        self.in_netns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._relay = LoopbackRelay(self.netns, int(self.cp.server.rsplit(":", 1)[1]))
        self._relay.start()

    def _containerd(self) -> None:
        w = self.workdir
        self.snapshotter = "overlayfs" if overlay_works(w / "overlay-probe") else "native"
        cni_conf = w / "cni" / "net.d"
        cni_conf.mkdir(parents=True)
        conflist = {
            "cniVersion": "0.4.0",
            "name": "dso-pods",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "dso0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_subnet}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(w / "cni" / "ipam"),
                    },
                }
            ],
        }
        (cni_conf / "10-dso.conflist").write_text(json.dumps(conflist, indent=2))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{w}/containerd/root"
state = "{w}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.sock}"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/containerd/opt"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "{self.snapshotter}"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{w}/runc"
  [{cri}.cni]
    bin_dir = "{CNI_DIR}"
    conf_dir = "{cni_conf}"
"""
        (w / "containerd.toml").write_text(config)
        self._spawn(
            "containerd",
            [*nsenter_prefix(self.netns), "containerd", "--config", str(w / "containerd.toml")],
        )
        wait_for(
            lambda: self._alive() and self.ctr("version", timeout=5).returncode == 0,
            30,
            f"containerd on {self.sock}",
        )

    def _import_images(self) -> None:
        for archive in self.images.archives():
            proc = self.ctr(
                "images", "import", "--snapshotter", self.snapshotter,
                str(archive), timeout=300,
            )  # fmt: skip
            if proc.returncode != 0:
                raise NodeUnavailable(f"ctr images import {archive.name}: {proc.stderr.strip()}")

    def _kubelet(self) -> None:
        w = self.workdir
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "containerRuntimeEndpoint": f"unix://{self.sock}",
            # This kernel: cgroup v1 with a unified mount; no QoS tree, nothing to enforce.
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "address": self.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzPort": 0,
            # Reached only over the veth pair from the host's apiserver (logs, exec).
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(w / "pod-logs"),
            "resolvConf": "",
            "clusterDomain": "cluster.local",
            "syncFrequency": KUBELET_SYNC,
            "nodeStatusReportFrequency": "10s",
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "maxPods": 30,
        }
        (w / "kubelet.json").write_text(json.dumps(config, indent=2))
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        args = [
            str(self.bindir / "kubelet"),
            f"--config={w / 'kubelet.json'}",
            f"--kubeconfig={self.cp.kubeconfig}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.node_ip}",
            f"--root-dir={w / 'kubelet'}",
            f"--cert-dir={w / 'kubelet-pki'}",
            "--v=1",
        ]
        if labels:
            args.append(f"--node-labels={labels}")
        self._spawn("kubelet", [*nsenter_prefix(self.netns), *args])
        wait_for(self._node_ready, 120, f"node {self.name} Ready")

    def _node_ready(self) -> bool:
        self.check_alive()
        proc = self.cp.kubectl("get", "node", self.name, "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        conds = json.loads(proc.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def _kube_proxy(self) -> None:
        args = [
            str(self.bindir / "kube-proxy"),
            f"--kubeconfig={self.cp.kubeconfig}",
            f"--hostname-override={self.name}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={CLUSTER_CIDR}",
            # 0: leave the kernel's (machine-wide) conntrack settings alone.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249",
            "--v=1",
        ]
        self._spawn("kube-proxy", [*nsenter_prefix(self.netns), *args])
        wait_for(
            lambda: self._alive() and self._healthz(10256),
            60,
            f"kube-proxy on {self.name}",
        )

    def _kube_router(self) -> None:
        args = [
            str(self.bindir / "kube-router"),
            f"--kubeconfig={self.cp.kubeconfig}",
            f"--hostname-override={self.name}",
            # The NetworkPolicy firewall only: no BGP routing, no service proxy (kube-proxy's).
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--enable-ipv6=false",
            "--metrics-port=0",
            "--health-port=20244",
            "--v=1",
        ]
        self._spawn("kube-router", [*nsenter_prefix(self.netns), *args])
        wait_for(
            lambda: self._alive() and self._healthz(20244),
            60,
            f"kube-router on {self.name}",
        )

    def _healthz(self, port: int) -> bool:
        proc = self.in_netns(
            "python3", "-c",
            "import sys,urllib.request;"
            f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}/healthz',"
            "timeout=2).status==200 else 1)",
            timeout=10,
        )  # fmt: skip
        return proc.returncode == 0

    # ------------------------------------------------------------------ processes

    def _alive(self) -> bool:
        self.check_alive()
        return True

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log = (self.logdir / f"{name}.log").open("ab")
        self._logs[name] = log
        self._procs[name] = spawn_logged(argv, log, self.workdir)

    def _terminate(self, name: str, grace: float = 10.0) -> None:
        stop_process(self._procs.pop(name, None), grace)
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def _remove_containers(self) -> None:
        """Kill and delete every task through containerd, so the shims run `runc delete`
        (which removes the containers' cgroups) before containerd goes."""
        if "containerd" not in self._procs or self._procs["containerd"].poll() is not None:
            return
        tasks = self.ctr("tasks", "ls", "-q", timeout=20).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, timeout=20)
        for task in tasks:
            self.ctr("tasks", "rm", "-f", task, timeout=20)
        # libcni caches each sandbox's result machine-wide (containerd 1.6 has no setting for
        # it); the sandboxes die with the namespace, so their entries go too.
        for task in tasks:
            for cached in CNI_RESULTS.glob(f"*-{task}-*"):
                cached.unlink(missing_ok=True)

    def _kill_leftovers(self) -> None:
        """Shims (and anything else) whose command line names this node's work directory."""
        for pid in list(pids_naming([f"{self.workdir}/".encode()])):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def _unmount_below(self) -> None:
        prefix = str(self.workdir) + "/"
        for _ in range(3):  # kubelet's rshared bind of its root dir hides mounts below it
            mounts = [
                line.split()[1]
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1].startswith(prefix) or line.split()[1] == str(self.workdir)
            ]
            if not mounts:
                return
            for mnt in sorted(set(mounts), key=len, reverse=True):
                subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)


def pod_manifest(
    name: str,
    namespace: str,
    image: str,
    *,
    labels: Mapping[str, str] | None = None,
    node: str | None = None,
    host_aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A client pod that sleeps until the tests `kubectl exec` into it."""
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "client",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sleep", "2147483647"],
            }
        ],
    }
    if node:
        spec["nodeName"] = node
    if host_aliases:
        # No cluster DNS here: the Service's name resolves through /etc/hosts instead.
        by_ip: dict[str, list[str]] = {}
        for host, addr in host_aliases.items():
            by_ip.setdefault(addr, []).append(host)
        spec["hostAliases"] = [{"ip": a, "hostnames": sorted(h)} for a, h in by_ip.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }
