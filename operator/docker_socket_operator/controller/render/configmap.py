"""The ConfigMap holding the proxy's policy file."""

from __future__ import annotations

from typing import Any

import yaml

from docker_socket_operator.api.models import API_VERSION, KIND, DockerSocketPolicySpec
from docker_socket_operator.controller.render.common import POLICY_FILE, RenderOptions, object_meta

# The only parts of a spec the proxy reads. Everything else shapes the pod, so a change to
# the ConfigMap is always a change in what the proxy allows (and is reloaded in place).
PROXY_FIELDS = ("rules", "visibility", "ownership", "audit", "limits")


def policy_document(name: str, expanded: DockerSocketPolicySpec) -> dict[str, Any]:
    """The proxy's `--policy` file: a DockerSocketPolicy with presets already expanded, so
    the rules a proxy enforces are readable in the ConfigMap and pinned to this operator."""
    spec = expanded.model_dump(mode="json", exclude_none=True, include=set(PROXY_FIELDS))
    for part in [*spec.get("rules", []), spec.get("visibility", {})]:
        if part.get("owned") is False:  # written only when set, as mode is
            del part["owned"]
    if expanded.mode != "enforce":  # written only when set, so enforce policies render as before
        spec["mode"] = expanded.mode
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


def render_configmap(
    policy: dict[str, Any],
    namespace: str,
    expanded: DockerSocketPolicySpec,
    options: RenderOptions,
) -> dict[str, Any]:
    doc = policy_document(policy["metadata"]["name"], expanded)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(policy, namespace, options),
        "data": {POLICY_FILE: yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)},
    }
