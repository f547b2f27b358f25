"""The Service clients reach the proxy of their own node through."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.controller.render.common import (
    RenderOptions,
    child_name,
    object_meta,
    selector_labels,
)


def render_service(
    policy: dict[str, Any],
    namespace: str,
    spec: DockerSocketPolicySpec,
    options: RenderOptions,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(policy, namespace, options),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(policy["metadata"]["name"]),
            "ports": [
                {"name": "docker", "port": spec.port, "targetPort": "docker", "protocol": "TCP"}
            ],
            # A client must reach the daemon of the node it runs on, never another node's:
            # traffic stays on the node, and with no local proxy it fails instead of hopping.
            "internalTrafficPolicy": "Local",
        },
    }


def endpoint(policy_name: str, namespace: str, port: int) -> str:
    """The DOCKER_HOST value a client uses."""
    return f"tcp://{child_name(policy_name)}.{namespace}.svc:{port}"
