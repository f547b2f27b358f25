"""Each seed policy (examples/policies/) on a real node: the proxy pod really runs (real
kubelet, real readiness probe, the node's real dockerd through hostPath), the policy's client
pod gets the policy's decisions, and every other pod is refused at the network by the
NetworkPolicy (enforced by kube-router), proven with the same client binary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.nodeclients import output
from tests.support.nodecluster import NodeCluster

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SEEDS = sorted((REPO / "examples" / "policies").glob("*.yaml"))
OTHER_NS = "elsewhere"


@dataclass(frozen=True)
class Calls:
    """A docker CLI call the policy allows (and what its output shows), one it denies."""

    allowed: tuple[str, ...]
    allowed_shows: str
    denied: tuple[str, ...]


# Containers on the node's dockerd that the policies' scopes name.
CONTAINERS: dict[str, dict[str, str]] = {
    "mcp-gateway": {},
    "caddy-site": {"caddy": "site.example"},
    "shop-web": {"com.docker.compose.project": "shop"},
    "chatops-app": {"chatops.example/managed": "true"},
}

CALLS = {
    "n8n-bot": Calls(("ps", "--format", "{{.Names}}"), "chatops-app", ("rm", "-f", "mcp-gateway")),
    "caddy-discovery": Calls(
        ("ps", "--format", "{{.Names}}"), "caddy-site", ("stop", "caddy-site")
    ),
    "compose-admin": Calls(("ps", "--format", "{{.Names}}"), "shop-web", ("system", "df")),
    "restart-one": Calls(("restart", "mcp-gateway"), "mcp-gateway", ("ps",)),
    "terminal-manager": Calls(("images", "--format", "{{.Repository}}"), "bb", ("volume", "ls")),
}


@dataclass
class Deployed:
    name: str
    namespace: str
    labels: dict[str, str]
    endpoint: str
    ready_seconds: float
    allowed: tuple[str, str]
    unlabelled: tuple[str, str]
    elsewhere: tuple[str, str]


def load_seed(path: Path, cluster: NodeCluster) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    # The node's dockerd, not the host's /var/run/docker.sock; its group, for the non-root proxy.
    doc["spec"]["socket"] = {"path": cluster.dockerd.socket_path, "group": cluster.socket_gid}
    return doc


def client_of(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    client = doc["spec"]["clients"][0]
    namespace: str = client["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    labels: dict[str, str] = dict(client["podSelector"]["matchLabels"])
    return namespace, labels


@pytest.fixture(scope="module")
def containers(node_cluster: NodeCluster) -> dict[str, str]:
    return {name: node_cluster.dockerd.create(name, labels=lbl) for name, lbl in CONTAINERS.items()}


@pytest.fixture(scope="module", params=SEEDS, ids=[p.stem for p in SEEDS])
def deployed(
    request: pytest.FixtureRequest, node_cluster: NodeCluster, containers: dict[str, str]
) -> Iterator[Deployed]:
    c = node_cluster
    doc = load_seed(request.param, c)
    name = doc["metadata"]["name"]
    namespace, labels = client_of(doc)
    t0 = time.monotonic()
    c.kube.apply(doc)
    policy = c.kube.wait_ready(name, 1, timeout=180)
    ready = round(time.monotonic() - t0, 1)
    c.results.setdefault("apply -> Ready 1/1 (s)", {})[name] = ready
    endpoint = policy["status"]["endpoint"]
    pods = (
        c.clients.start("allowed", namespace, labels, endpoint),
        c.clients.start("unlabelled", namespace, {}, endpoint),
        c.clients.start("elsewhere", OTHER_NS, labels, endpoint),
    )
    c.clients.wait_running(*pods)
    try:
        yield Deployed(name, namespace, labels, endpoint, ready, *pods)
    finally:
        c.clients.delete(*pods)
        c.cp.kubectl("delete", "dockersocketpolicy", name, "--wait=false", check=False)


def record(cluster: NodeCluster, policy: str, check: str, result: str) -> None:
    cluster.results.setdefault("reachability", {}).setdefault(policy, {})[check] = result


def test_proxy_pod_ready_through_the_real_probe(
    node_cluster: NodeCluster, deployed: Deployed
) -> None:
    pods = node_cluster.cp.kubectl_json(
        "get", "pods", "-n", "dso-system", "-l", f"dockersocket.io/policy={deployed.name}"
    )["items"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["nodeName"] == node_cluster.node.name
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    (container,) = pod["status"]["containerStatuses"]
    assert container["ready"] and "running" in container["state"]
    get = node_cluster.cp.kubectl("get", "dsp", deployed.name).stdout
    assert "1/1" in get, get


def test_labelled_client_gets_the_policys_decisions(
    node_cluster: NodeCluster, deployed: Deployed
) -> None:
    c, calls = node_cluster, CALLS[deployed.name]
    allowed = c.clients.docker(deployed.allowed, deployed.endpoint, *calls.allowed)
    assert allowed.returncode == 0, output(allowed)
    assert calls.allowed_shows in allowed.stdout, output(allowed)
    record(c, deployed.name, f"labelled pod: docker {' '.join(calls.allowed)}", "allowed")

    before = {n: c.dockerd.inspect(n) for n in CONTAINERS}
    denied = c.clients.docker(deployed.allowed, deployed.endpoint, *calls.denied)
    assert denied.returncode != 0
    assert "blocked by policy" in output(denied), output(denied)
    record(c, deployed.name, f"labelled pod: docker {' '.join(calls.denied)}", "blocked by policy")
    # The daemon itself shows nothing happened.
    for name, doc in before.items():
        after = c.dockerd.inspect(name)
        assert after is not None and doc is not None
        assert after["State"]["Running"] == doc["State"]["Running"], name


@pytest.mark.parametrize("who", ["unlabelled", "elsewhere"])
def test_other_pods_are_refused_at_the_network(
    node_cluster: NodeCluster, deployed: Deployed, who: str
) -> None:
    """An unlabelled pod in the client namespace (the namespace half only) and a labelled pod
    in another namespace (the labels half only) cannot even connect, with the same CLI."""
    c = node_cluster
    control = c.clients.docker(deployed.allowed, deployed.endpoint, "version")
    pod = deployed.unlabelled if who == "unlabelled" else deployed.elsewhere
    proc = c.clients.docker(pod, deployed.endpoint, "version", timeout=8)
    text = output(proc)
    assert proc.returncode != 0, text
    assert "Cannot connect to the Docker daemon" in text or proc.returncode in (124, 143), text
    assert "blocked by policy" not in text and "Server:" not in text, text
    # The same call from the labelled pod reaches the proxy (a policy may still deny it).
    assert "Server:" in output(control) or "blocked by policy" in output(control), output(control)
    record(c, deployed.name, f"{who} pod: docker version", "refused at the network")
