"""The proxy pod as the real kubelet and containerd run it: what it is allowed to be (seen from
inside the running container, not only in the manifest), its probes and metrics while the
NetworkPolicy is in force, a rule change reaching it through the kubelet's ConfigMap update,
a change of what shapes the pod rolling it, and a node without the socket."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.nodeclients import output
from tests.support.nodecluster import OPERATOR_NS, NodeCluster, node_policy, proxy_pods
from tests.support.operatorproc import condition
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

NAME = "node-live"
CLIENT_NS = "apps"
LABELS = {"app": "docker-client"}
READ = ["system.ping", "system.version", "system.events", "containers.list"]
METRICS_PORT = 9102
PROXY_PYTHON = "/opt/dso/bin/python"  # the image's own interpreter (it has no shell)


@dataclass
class Live:
    endpoint: str
    client: tuple[str, str]


@pytest.fixture(scope="module")
def live(node_cluster: NodeCluster) -> Iterator[Live]:
    c = node_cluster
    c.kube.apply(node_policy(c, NAME, CLIENT_NS, LABELS, [{"allow": READ}]))
    policy = c.kube.wait_ready(NAME, 1, timeout=180)
    endpoint = policy["status"]["endpoint"]
    client = c.clients.start("client", CLIENT_NS, LABELS, endpoint)
    c.clients.wait_running(client)
    try:
        yield Live(endpoint, client)
    finally:
        c.clients.delete(client)
        c.cp.kubectl("delete", "dockersocketpolicy", NAME, "--wait=false", check=False)


def proxy_pod(c: NodeCluster) -> dict[str, Any]:
    pods = wait_for(lambda: proxy_pods(c, NAME), 60, "the proxy pod")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod: dict[str, Any] = pods[0]
    return pod


def in_proxy(c: NodeCluster, pod: dict[str, Any], code: str) -> subprocess.CompletedProcess[str]:
    """Python inside the running proxy container (the image's own interpreter)."""
    return c.cp.kubectl(
        "exec", "-n", OPERATOR_NS, pod["metadata"]["name"], "--", PROXY_PYTHON, "-c", code,
        check=False,
    )  # fmt: skip


PROBE = """
import json, os
def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
              if ":\\t" in line)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "cap_eff": status["CapEff"].strip(), "cap_prm": status["CapPrm"].strip(),
    "no_new_privs": status.get("NoNewPrivs", "").strip(),
    "write_root": can_write("/probe"),
    "write_socket_dir": can_write("/run/docker-socket-proxy/probe"),
    "write_policy_dir": can_write("/etc/docker-socket-proxy/probe"),
    "sa_token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount"),
}))
"""


def test_proxy_runs_unprivileged_seen_from_inside(node_cluster: NodeCluster, live: Live) -> None:
    c = node_cluster
    pod = proxy_pod(c)
    proc = in_proxy(c, pod, PROBE)
    assert proc.returncode == 0, output(proc)
    seen = json.loads(proc.stdout)
    assert seen["uid"] != 0, seen
    assert c.socket_gid in seen["groups"] or seen["gid"] == c.socket_gid, seen
    assert int(seen["cap_eff"], 16) == 0 and int(seen["cap_prm"], 16) == 0, seen
    assert seen["no_new_privs"] == "1", seen
    assert not seen["write_root"], "the root filesystem is writable"
    assert not seen["write_socket_dir"], "the socket's directory is writable"
    assert not seen["write_policy_dir"], "the policy directory is writable"
    assert not seen["sa_token"], "a service-account token is mounted"
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["docker-socket"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["docker-socket"]["hostPath"]["path"] == c.dockerd.socket_path
    # And it really talks to the node's daemon through that socket.
    ok = c.clients.docker(live.client, live.endpoint, "version", "--format", "{{.Server.Version}}")
    assert ok.returncode == 0 and ok.stdout.strip(), output(ok)


def test_probes_and_metrics_work_under_the_networkpolicy(
    node_cluster: NodeCluster, live: Live
) -> None:
    c = node_cluster
    assert (
        c.kube.get("networkpolicy", f"dsp-{NAME}")
        or c.cp.kubectl_json(
            "get", "networkpolicies", "-n", OPERATOR_NS, "-l", f"dockersocket.io/policy={NAME}"
        )["items"]
    ), "no NetworkPolicy rendered"
    pod = proxy_pod(c)
    # Ready through the real readiness probe, never restarted by the liveness probe.
    ready = condition(pod, "Ready")
    assert ready is not None and ready["status"] == "True"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    pod_ip = pod["status"]["podIP"]
    # From the node (where the kubelet probes from): /healthz, /readyz and /metrics answer.
    for path in ("/healthz", "/readyz", "/metrics"):
        got = c.node.in_netns(
            "python3", "-c",
            "import urllib.request as u;"
            f"r=u.urlopen('http://{pod_ip}:{METRICS_PORT}{path}',timeout=5);"
            "print(r.status);print(r.read(2000).decode(errors='replace'))",
        )  # fmt: skip
        assert got.returncode == 0 and got.stdout.startswith("200"), (path, got.stderr)
    # From the client pod the metrics port is not among what the policy opens.
    probe = c.clients.exec(
        live.client, "wget", "-q", "-O", "-", "-T", "5", f"http://{pod_ip}:{METRICS_PORT}/metrics",
        timeout=10,
    )  # fmt: skip
    assert probe.returncode != 0, output(probe)


def wait_for_quietly(predicate: Any, timeout: float) -> bool:
    try:
        wait_for(predicate, timeout, "a line")
    except TimeoutError:
        return False
    return True


class EventStream:
    """`docker events` running in the client pod through kubectl exec; lines on a list."""

    def __init__(self, c: NodeCluster, live: Live) -> None:
        ns, name = live.client
        self.proc = subprocess.Popen(
            [c.cp.kubectl_bin, f"--kubeconfig={c.cp.kubeconfig}", "exec", "-n", ns, name, "--",
             "docker", "-H", live.endpoint, "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def saw(self, needle: str) -> bool:
        return any(needle in line for line in self.lines)

    def sees_new_container(self, c: NodeCluster, prefix: str) -> None:
        """Start containers on the daemon until the stream shows one starting (the exec may
        still be connecting when the first one starts)."""
        names: list[str] = []

        def poke() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the event stream ended: {self.stop()}")
            names.append(f"{prefix}-{len(names)}")
            c.dockerd.create(names[-1])
            return wait_for_quietly(lambda: self.saw(f"start {names[-1]}"), 5)

        wait_for(poke, 90, f"the event stream to show {prefix}-* starting")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def test_rule_change_reaches_the_running_proxy_and_streams_survive(
    node_cluster: NodeCluster, live: Live
) -> None:
    c = node_cluster
    before = proxy_pod(c)
    listed = c.clients.docker(live.client, live.endpoint, "ps")
    assert listed.returncode == 0, output(listed)
    events = EventStream(c, live)
    try:
        events.sees_new_container(c, "evt-before")
        c.kube.apply(node_policy(c, NAME, CLIENT_NS, LABELS, [{"allow": READ[:3]}]))

        def now_blocked() -> bool:
            proc = c.clients.docker(live.client, live.endpoint, "ps")
            return proc.returncode != 0 and "blocked by policy" in output(proc)

        t0 = time.monotonic()
        wait_for(now_blocked, 150, "the kubelet's ConfigMap update to reach the proxy")
        c.results["rule change -> new decision in the running proxy (s)"] = round(
            time.monotonic() - t0, 1
        )
        after = proxy_pod(c)
        assert after["metadata"]["uid"] == before["metadata"]["uid"], "the pod was replaced"
        assert after["status"]["containerStatuses"][0]["restartCount"] == 0
        # The stream opened under the old rules is still delivering.
        assert events.proc.poll() is None, events.stop()
        events.sees_new_container(c, "evt-after")
    finally:
        events.stop()
        c.kube.apply(node_policy(c, NAME, CLIENT_NS, LABELS, [{"allow": READ}]))


def test_socket_path_change_rolls_the_daemonset(node_cluster: NodeCluster, live: Live) -> None:
    c = node_cluster
    before = proxy_pod(c)
    # A second name for the very same socket (a hard link), so the new pod works too.
    other = os.path.join(os.path.dirname(c.dockerd.socket_path), "docker-alias.sock")
    if not os.path.exists(other):
        os.link(c.dockerd.socket_path, other)
    t0 = time.monotonic()
    c.kube.apply(node_policy(c, NAME, CLIENT_NS, LABELS, [{"allow": READ}], socket_path=other))

    def rolled() -> dict[str, Any] | None:
        pods = proxy_pods(c, NAME)
        fresh = [p for p in pods if p["metadata"]["uid"] != before["metadata"]["uid"]]
        if (
            len(pods) == 1
            and fresh
            and (condition(fresh[0], "Ready") or {}).get("status") == "True"
        ):
            return fresh[0]
        return None

    new = wait_for(rolled, 180, "the DaemonSet to roll to the new socket path")
    c.results["socket path change -> new proxy pod Ready (s)"] = round(time.monotonic() - t0, 1)
    assert new["spec"]["volumes"][0]["hostPath"]["path"] == other or any(
        v.get("hostPath", {}).get("path") == other for v in new["spec"]["volumes"]
    )
    c.kube.wait_ready(NAME, 1, timeout=120)
    ok = c.clients.docker(live.client, live.endpoint, "version")
    assert ok.returncode == 0, output(ok)


def test_node_without_the_socket_is_named_in_the_status(node_cluster: NodeCluster) -> None:
    c = node_cluster
    name = "node-nosocket"
    # Beside the daemon's socket, so that a hard link can make it appear later.
    missing_dir = os.path.join(os.path.dirname(c.dockerd.socket_path), "dso-not-yet")
    missing = os.path.join(missing_dir, "docker.sock")
    t0 = time.monotonic()
    c.kube.apply(node_policy(c, name, CLIENT_NS, LABELS, [{"allow": READ}], socket_path=missing))
    try:

        def degraded() -> dict[str, Any] | None:
            policy = c.kube.policy(name) or {}
            return policy if (condition(policy, "Degraded") or {}).get("status") == "True" else None

        policy = wait_for(degraded, 120, "the status to name the node without the socket")
        c.results["missing socket -> node and reason in the status (s)"] = round(
            time.monotonic() - t0, 1
        )
        ready = condition(policy, "Ready")
        assert ready is not None and ready["status"] == "False"
        assert c.node.name in ready["message"], ready
        assert f"{missing} is not a socket file" in ready["message"], ready
        # Degraded says what needs a person; Stalled (kstatus: Failed) stays False, since
        # the kubelet keeps retrying and the pod starts once the socket is there.
        cond = condition(policy, "Degraded") or {}
        assert cond["reason"] == "SocketMissing" and c.node.name in cond["message"], cond
        assert (condition(policy, "Stalled") or {}).get("status") == "False"
        # And the pod really did not start.
        for pod in proxy_pods(c, name):
            statuses = pod["status"].get("containerStatuses") or []
            assert not any("running" in s.get("state", {}) for s in statuses), pod["status"]

        # The node gets its socket: the same policy recovers with no one touching it.
        t0 = time.monotonic()
        os.makedirs(missing_dir, exist_ok=True)
        os.link(c.dockerd.socket_path, missing)
        recovered = c.kube.wait_ready(name, 1, timeout=240)
        c.results["socket appears -> Ready again, no spec change (s)"] = round(
            time.monotonic() - t0, 1
        )
        assert (condition(recovered, "Degraded") or {}).get("status") == "False"
    finally:
        c.cp.kubectl("delete", "dockersocketpolicy", name, "--wait=false", check=False)
        if os.path.exists(missing):
            os.unlink(missing)
        if os.path.isdir(missing_dir):
            os.rmdir(missing_dir)
