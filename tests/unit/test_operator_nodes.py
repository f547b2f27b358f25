"""Status counts the nodes the policy selects, judged from the policy itself."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.controller.nodes import matching_nodes
from docker_socket_operator.controller.status import Outcome, compute_status


def node(name: str, labels: dict[str, str], taints: list[dict[str, str]] | None = None) -> Any:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints or []}}


NODES = [
    node("a", {"docker": "true"}),
    node("b", {"docker": "true"}, [{"key": "edge", "effect": "NoSchedule"}]),
    node("c", {}, [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
    node("d", {}, [{"key": "soft", "effect": "PreferNoSchedule"}]),
]


def test_node_selector_and_taints() -> None:
    spec = DockerSocketPolicySpec.model_validate
    assert matching_nodes(NODES, spec({})) == ["a", "c", "d"]
    assert matching_nodes(NODES, spec({"nodeSelector": {"docker": "true"}})) == ["a"]
    tolerant = spec({"tolerations": [{"key": "edge", "operator": "Exists"}]})
    assert matching_nodes(NODES, tolerant) == ["a", "b", "c", "d"]
    everything = spec({"tolerations": [{"operator": "Exists"}]})
    assert matching_nodes(NODES, everything) == ["a", "b", "c", "d"]


def test_a_narrowed_daemonset_is_not_ready() -> None:
    ds = {
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2,
            "desiredNumberScheduled": 2,
            "numberReady": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 2,
        },
    }
    policy = {"metadata": {"name": "p", "generation": 1}, "spec": {}}
    status = compute_status(policy, Outcome(matching_nodes=3), ds, now="T")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "2 of the 3" in ready["message"]
    assert status["nodesReady"] == "2/3"
    assert compute_status(policy, Outcome(matching_nodes=2), ds, now="T")["nodesReady"] == "2/2"
