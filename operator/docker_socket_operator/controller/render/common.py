"""Names, labels and owner references every child object of a policy shares."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.api.models import API_VERSION, KIND

MANAGER = "docker-socket-operator"
APP_NAME = "docker-socket-proxy"
POLICY_LABEL = "dockersocket.io/policy"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
CONFIG_HASH_ANNOTATION = "dockersocket.io/config-hash"

PROXY_PORT = 2375
DEFAULT_METRICS_PORT = 9102
POLICY_FILE = "policy.yaml"

_DNS_LABEL_MAX = 63
_NAME_PREFIX = "dsp-"


@dataclass(frozen=True)
class RenderOptions:
    """Operator-wide settings that shape every policy's children (not part of any policy)."""

    metrics_port: int = DEFAULT_METRICS_PORT
    # One NetworkPolicy peer allowed to scrape the metrics port; None: nobody.
    monitoring_peer: dict[str, Any] | None = None
    image_pull_policy: str = "IfNotPresent"
    extra_labels: dict[str, str] = field(default_factory=dict)


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def child_name(policy_name: str) -> str:
    """`dsp-<policy>`, made a valid DNS-1035 label (Service names are).

    Policy names may hold dots and be 253 characters long; such names are cleaned and
    truncated with a hash suffix so two long names never collide.
    """
    cleaned = re.sub(r"[^a-z0-9-]", "-", policy_name.lower())
    name = _NAME_PREFIX + cleaned
    if name == _NAME_PREFIX + policy_name and len(name) <= _DNS_LABEL_MAX:
        return name
    suffix = _short_hash(policy_name)
    return f"{name[: _DNS_LABEL_MAX - len(suffix) - 1].rstrip('-')}-{suffix}"


def policy_label_value(policy_name: str) -> str:
    """The `dockersocket.io/policy` label value (label values stop at 63 characters)."""
    if len(policy_name) <= _DNS_LABEL_MAX:
        return policy_name
    suffix = _short_hash(policy_name)
    return f"{policy_name[: _DNS_LABEL_MAX - len(suffix) - 1].rstrip('.-_')}-{suffix}"


def selector_labels(policy_name: str) -> dict[str, str]:
    """Labels that pick one policy's proxy pods (DaemonSet selector: never change them)."""
    return {NAME_LABEL: APP_NAME, POLICY_LABEL: policy_label_value(policy_name)}


def common_labels(policy_name: str, options: RenderOptions) -> dict[str, str]:
    return {
        **options.extra_labels,
        MANAGED_BY_LABEL: MANAGER,
        **selector_labels(policy_name),
    }


def owner_reference(policy: dict[str, Any]) -> dict[str, Any]:
    """The cluster-scoped policy owns its namespaced children: deleting it deletes them."""
    meta = policy.get("metadata", {})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(policy: dict[str, Any], namespace: str, options: RenderOptions) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    return {
        "name": child_name(name),
        "namespace": namespace,
        "labels": common_labels(name, options),
        "ownerReferences": [owner_reference(policy)],
    }


def stable_hash(value: Any) -> str:
    """sha256 of a JSON-able value, independent of dict order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
