"""The NetworkPolicy: port 2375 only from the policy's clients, no egress at all."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.api.models import ClientPeer, DockerSocketPolicySpec, LabelSelector
from docker_socket_operator.controller.render.common import (
    PROXY_PORT,
    RenderOptions,
    object_meta,
    selector_labels,
)


def label_selector(selector: LabelSelector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if selector.matchLabels:
        out["matchLabels"] = dict(selector.matchLabels)
    if selector.matchExpressions:
        out["matchExpressions"] = [
            req.model_dump(mode="json", exclude_defaults=False) for req in selector.matchExpressions
        ]
    return out


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace_selector(client: ClientPeer) -> dict[str, Any]:
    """The client's namespaces by the label the API server puts on every namespace."""
    if client.namespace is not None:
        return {"matchLabels": {NAMESPACE_NAME_LABEL: client.namespace}}
    if client.namespaces:
        names = sorted(set(client.namespaces))
        return {
            "matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": names}]
        }
    assert client.namespaceSelector is not None  # the model insists on one of the three
    return label_selector(client.namespaceSelector)


def client_peers(spec: DockerSocketPolicySpec) -> list[dict[str, Any]]:
    # Each client is ONE peer holding both selectors, which NetworkPolicy ANDs. Two peers
    # (one per selector) would OR them: any pod in the namespace, or the label anywhere.
    # `allPods` renders the empty podSelector deliberately: every pod of those namespaces.
    return [
        {
            "namespaceSelector": namespace_selector(client),
            "podSelector": {} if client.allPods or client.podSelector is None
            else label_selector(client.podSelector),
        }
        for client in spec.clients
    ]  # fmt: skip


def render_networkpolicy(
    policy: dict[str, Any],
    namespace: str,
    spec: DockerSocketPolicySpec,
    options: RenderOptions,
) -> dict[str, Any]:
    ingress: list[dict[str, Any]] = []
    peers = client_peers(spec)
    # An ingress rule with an empty `from` admits everybody: with no clients, no rule.
    if peers:
        ingress.append({"from": peers, "ports": [{"protocol": "TCP", "port": PROXY_PORT}]})
    if options.monitoring_peer:
        ingress.append(
            {
                "from": [options.monitoring_peer],
                "ports": [{"protocol": "TCP", "port": options.metrics_port}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(policy, namespace, options),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(policy["metadata"]["name"])},
            # Egress listed with no rules: the proxy talks to a Unix socket, never the network.
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
        },
    }
