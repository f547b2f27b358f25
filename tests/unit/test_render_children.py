"""ConfigMap, Service, NetworkPolicy; names, labels and ownership shared by all children."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from docker_socket_operator.controller.render import RenderOptions, child_name, render
from docker_socket_operator.controller.render.common import policy_label_value
from docker_socket_operator.policy.types import PolicyError
from tests.support.operatorproc import policy

NS = "dso-system"
IMAGE = "registry.example/dso:1.0"
UID = "0b9c2a4e-0000-4000-8000-000000000001"


def children(spec: dict[str, Any], name: str = "traefik", **opts: Any) -> dict[str, Any]:
    doc = policy(name, spec)
    doc["metadata"]["uid"] = UID
    return {o["kind"]: o for o in render(doc, NS, IMAGE, RenderOptions(**opts))}


CLIENT = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
}


def test_every_child_is_labelled_named_and_owned() -> None:
    for obj in children({}).values():
        meta = obj["metadata"]
        assert meta["name"] == "dsp-traefik"
        assert meta["namespace"] == NS
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "docker-socket-operator"
        assert meta["labels"]["app.kubernetes.io/name"] == "docker-socket-proxy"
        assert meta["labels"]["dockersocket.io/policy"] == "traefik"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "dockersocket.io/v1alpha1",
                "kind": "DockerSocketPolicy",
                "name": "traefik",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_long_and_dotted_names_become_valid_dns_labels() -> None:
    long_name = "a" * 200
    assert len(child_name(long_name)) <= 63
    assert child_name(long_name) != child_name("a" * 199)
    assert child_name("team.ci").startswith("dsp-team-ci-")
    assert len(policy_label_value(long_name)) <= 63


def test_configmap_holds_the_proxy_policy_file() -> None:
    cm = children({"rules": [{"allow": ["containers.restart"]}], "audit": "all", "port": 2376})[
        "ConfigMap"
    ]
    doc = yaml.safe_load(cm["data"]["policy.yaml"])
    assert doc["apiVersion"] == "dockersocket.io/v1alpha1"
    assert doc["kind"] == "DockerSocketPolicy"
    assert doc["spec"]["audit"] == "all"
    assert doc["spec"]["rules"][0]["allow"] == ["containers.restart"]
    # Pod-shaping fields stay out: a port change must not look like a rule change.
    assert set(doc["spec"]) <= {"rules", "visibility", "audit", "limits"}


def test_configmap_expands_presets() -> None:
    pytest.importorskip("docker_socket_operator.policy.compile")
    cm = children({"rules": [{"preset": "read-only"}]})["ConfigMap"]
    doc = yaml.safe_load(cm["data"]["policy.yaml"])
    rules = doc["spec"]["rules"]
    assert rules and all("preset" not in rule for rule in rules)
    assert any("containers.list" in rule.get("allow", []) for rule in rules)


def test_service_is_node_local() -> None:
    svc = children({"port": 2376})["Service"]["spec"]
    assert svc["internalTrafficPolicy"] == "Local"
    assert svc["ports"] == [
        {"name": "docker", "port": 2376, "targetPort": "docker", "protocol": "TCP"}
    ]
    assert svc["selector"] == {
        "app.kubernetes.io/name": "docker-socket-proxy",
        "dockersocket.io/policy": "traefik",
    }


def test_networkpolicy_client_is_one_peer_with_both_selectors() -> None:
    netpol = children({"clients": [CLIENT]})["NetworkPolicy"]["spec"]
    assert netpol["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in netpol  # Egress listed with no rule: nothing leaves the pod
    assert netpol["podSelector"]["matchLabels"]["dockersocket.io/policy"] == "traefik"
    (rule,) = netpol["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 2375}]
    # ONE peer holding both selectors (AND); two peers would be an OR.
    assert rule["from"] == [CLIENT]


def test_networkpolicy_one_peer_per_client() -> None:
    other = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ci"}},
        "podSelector": {
            "matchExpressions": [{"key": "role", "operator": "In", "values": ["runner"]}]
        },
    }
    (rule,) = children({"clients": [CLIENT, other]})["NetworkPolicy"]["spec"]["ingress"]
    assert rule["from"] == [CLIENT, other]
    assert all(set(peer) == {"namespaceSelector", "podSelector"} for peer in rule["from"])


def test_no_clients_means_no_ingress_rule_at_all() -> None:
    # An ingress rule with an empty `from` would admit every pod in the cluster.
    netpol = children({})["NetworkPolicy"]["spec"]
    assert netpol["ingress"] == []
    assert netpol["policyTypes"] == ["Ingress", "Egress"]


def test_metrics_port_only_from_the_monitoring_peer() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    netpol = children({"clients": [CLIENT]}, monitoring_peer=peer)["NetworkPolicy"]["spec"]
    docker_rule, metrics_rule = netpol["ingress"]
    assert docker_rule["ports"] == [{"protocol": "TCP", "port": 2375}]
    assert metrics_rule == {"from": [peer], "ports": [{"protocol": "TCP", "port": 9102}]}
    no_monitoring = children({"clients": [CLIENT]})["NetworkPolicy"]["spec"]
    assert all(r["ports"][0]["port"] != 9102 for r in no_monitoring["ingress"])


def test_spec_errors_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match=r"spec\.audit"):
        children({"audit": "loud"})
    with pytest.raises(PolicyError, match="exactly one"):
        children({"rules": [{"preset": "read-only", "allow": ["containers.list"]}]})


def _peer(client: dict[str, Any]) -> dict[str, Any]:
    (rule,) = children({"clients": [client]})["NetworkPolicy"]["spec"]["ingress"]
    (peer,) = rule["from"]
    return dict(peer)


POD = {"podSelector": {"matchLabels": {"app": "ci"}}}


def test_client_namespace_forms_render_to_one_namespace_selector() -> None:
    by_name = {"matchLabels": {"kubernetes.io/metadata.name": "ci"}}
    assert _peer({"namespace": "ci", **POD}) == {"namespaceSelector": by_name, **POD}
    many = _peer({"namespaces": ["ci", "build", "ci"], **POD})["namespaceSelector"]
    assert many == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["build", "ci"]}
        ]
    }


def test_every_pod_of_a_namespace_needs_all_pods() -> None:
    assert _peer({"namespace": "ci", "allPods": True}) == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ci"}},
        "podSelector": {},
    }


@pytest.mark.parametrize(
    ("client", "says"),
    [
        ({}, "names its namespace"),
        (POD, "names its namespace"),  # the old "every namespace" reading
        ({"namespaceSelector": {}, **POD}, "names its namespace"),
        ({"namespace": "ci"}, "selects its pods"),
        ({"namespace": "ci", "podSelector": {}}, "selects its pods"),
        ({"namespace": "ci", "namespaces": ["x"], **POD}, "exactly one of"),
        ({"namespace": "ci", "allPods": True, **POD}, "not both"),
        ({"namespace": "Not_A_Name", **POD}, "pattern"),
    ],
)
def test_implicit_clients_are_refused(client: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        children({"clients": [client]})
