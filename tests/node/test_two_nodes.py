"""Two real nodes: `internalTrafficPolicy: Local` sends each client to the proxy of its own
node, never across. Both nodes share this machine's filesystem (so the same dockerd socket);
what tells the proxies apart is their audit log, read back from each proxy pod."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.node import NodeUnavailable, RealNode
from tests.support.nodeclients import output
from tests.support.nodecluster import NODE_LABELS, NodeCluster, node_policy, proxy_pods

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

NAME = "two-nodes"
CLIENT_NS = "pair"
LABELS = {"app": "pair-client"}


@pytest.fixture(scope="module")
def second_node(node_cluster: NodeCluster) -> Iterator[RealNode]:
    c = node_cluster
    node = RealNode(c.cp, "dso-node-1", c.node.images, labels=NODE_LABELS)
    t0 = time.monotonic()
    try:
        node.start()
    except NodeUnavailable as exc:
        pytest.skip(f"a second node cannot start here: {exc}")
    c.results["second node start (s)"] = round(time.monotonic() - t0, 1)
    try:
        yield node
    finally:
        c.cp.kubectl("delete", "dockersocketpolicy", NAME, "--wait=false", check=False)
        node.stop()


def test_each_client_reaches_the_proxy_of_its_own_node(
    node_cluster: NodeCluster, second_node: RealNode
) -> None:
    c = node_cluster
    policy = node_policy(
        c, NAME, CLIENT_NS, LABELS, [{"allow": ["system.ping", "containers.list"]}]
    )
    policy["spec"]["audit"] = "all"
    c.kube.apply(policy)
    endpoint = c.kube.wait_ready(NAME, 2, timeout=180)["status"]["endpoint"]
    nodes = {c.node.name: c.node, second_node.name: second_node}
    clients = {
        name: c.clients.start(f"client-{name}", CLIENT_NS, LABELS, endpoint, node=node)
        for name, node in nodes.items()
    }
    c.clients.wait_running(*clients.values())
    for name, pod in clients.items():
        for _ in range(3):  # several connections: a random spread would show on the other node
            proc = c.clients.docker(pod, endpoint, "ps", "--filter", f"label=from={name}")
            assert proc.returncode == 0, output(proc)
    proxies = {p["spec"]["nodeName"]: p["metadata"]["name"] for p in proxy_pods(c, NAME)}
    assert set(proxies) == set(nodes), proxies
    seen = {}
    for node_name, pod_name in proxies.items():
        seen[node_name] = c.cp.kubectl("logs", "-n", "dso-system", pod_name).stdout
    for node_name in nodes:
        other = next(n for n in nodes if n != node_name)
        assert f"from%3D{node_name}" in seen[node_name] or f"from={node_name}" in seen[node_name]
        assert f"from%3D{other}" not in seen[node_name] and f"from={other}" not in seen[node_name]
    c.results["two nodes: each client served by its own node's proxy"] = "yes"
