"""The DockerSocketPolicy CustomResourceDefinition, generated from the pydantic models.

The models are the single source of truth; this module turns their JSON schema into a
*structural* OpenAPI v3 schema as the API server demands it: every `$ref` inlined,
`anyOf [X, null]` folded into `nullable: true`, titles and `additionalProperties: false`
dropped (pruning does that job), and CEL rules added where JSON schema cannot say it.

`docker-socket-operator crd --output crds/` writes the file the repository commits; a unit
test regenerates it in memory and fails when the committed copy is stale.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from docker_socket_operator.api.models import (
    CLIENT_NAMESPACE_MESSAGE,
    CLIENT_PODS_MESSAGE,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    DockerSocketPolicySpec,
    DockerSocketPolicyStatus,
)

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILENAME = f"{GROUP}_{PLURAL}.yaml"
SHORT_NAMES = ["dsp"]

# Rule: exactly one of preset, allow, deny. `has()` is false for an absent field; an empty
# list counts as absent because the models treat `allow: []` as "not given".
RULE_ONE_KIND = (
    "(has(self.preset) ? 1 : 0)"
    " + (has(self.allow) && size(self.allow) > 0 ? 1 : 0)"
    " + (has(self.deny) && size(self.deny) > 0 ? 1 : 0) == 1"
)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s, fold `anyOf [X, {type: null}]` into X + nullable, drop titles."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v != {"type": "null"}]
        nullable = len(variants) != len(node["anyOf"])
        if len(variants) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']!r} structurally")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        merged = {**_resolve(variants[0], defs), **rest}
        if nullable:
            merged["nullable"] = True
        return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "additionalProperties" and value is False:
            continue  # unknown fields are pruned (and rejected by strict field validation)
        if key == "default" and value is None:
            continue  # "absent" already means null
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _resolve(value, defs)
    return out


def structural_schema(model: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model."""
    raw = model.model_json_schema()
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _resolve(raw, defs)
    return schema


# CEL's cost estimate multiplies a rule's cost by how many times it may run: an unbounded
# list is assumed huge and the CRD is refused. A bound far above any real policy.
MAX_RULES = 256


def _selects(field: str) -> str:
    sel = f"self.{field}"
    return (
        f"(has({sel}) && ((has({sel}.matchLabels) && size({sel}.matchLabels) > 0)"
        f" || (has({sel}.matchExpressions) && size({sel}.matchExpressions) > 0)))"
    )


# A client: exactly one way of naming its namespaces, and pods picked by label or by an
# explicit allPods (the models say the same in pydantic; an empty selector counts as absent).
CLIENT_ONE_NAMESPACE = (
    "(has(self.__namespace__) ? 1 : 0)"
    " + (has(self.namespaces) && size(self.namespaces) > 0 ? 1 : 0)"
    f" + ({_selects('namespaceSelector')} ? 1 : 0) == 1"
)
CLIENT_PODS = f"(has(self.allPods) && self.allPods) != {_selects('podSelector')}"
MAX_CLIENTS = 64


def _add_client_validation(spec_schema: dict[str, Any]) -> None:
    clients = spec_schema["properties"]["clients"]
    clients["maxItems"] = MAX_CLIENTS
    client = clients["items"]
    for sel in ("namespaceSelector", "podSelector"):
        sel_schema = client["properties"][sel]
        sel_schema["properties"]["matchExpressions"]["maxItems"] = 32
        sel_schema["properties"]["matchLabels"]["maxProperties"] = 64
    client["properties"]["namespaces"]["items"]["maxLength"] = 63
    client["properties"]["namespace"]["maxLength"] = 63
    client["x-kubernetes-validations"] = [
        {"rule": CLIENT_ONE_NAMESPACE, "message": CLIENT_NAMESPACE_MESSAGE},
        {"rule": CLIENT_PODS, "message": CLIENT_PODS_MESSAGE},
    ]


def _add_rule_validation(spec_schema: dict[str, Any]) -> None:
    rules = spec_schema["properties"]["rules"]
    rules["maxItems"] = MAX_RULES
    rule = rules["items"]
    rule["x-kubernetes-validations"] = [
        {"rule": RULE_ONE_KIND, "message": "a rule needs exactly one of preset, allow or deny"}
    ]


def _status_schema() -> dict[str, Any]:
    status = structural_schema(DockerSocketPolicyStatus)
    conditions = status["properties"]["conditions"]
    # Conditions are a map keyed by type: server-side apply and kstatus expect that.
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    # Fields a newer operator adds survive a downgrade instead of being pruned.
    status["x-kubernetes-preserve-unknown-fields"] = True
    return status


def _drop_defaults_in_list_items(node: Any, in_items: bool = False) -> None:
    """No `default` inside list items: the lists are atomic for server-side apply, and a
    defaulted field in an item makes the stored list differ from the one applied, so a
    second field manager applying the same policy (Argo CD, Flux) would conflict. The
    models apply those defaults when the operator reads the spec; the meaning is the same."""
    if isinstance(node, dict):
        if in_items:
            node.pop("default", None)
        for key, value in node.items():
            _drop_defaults_in_list_items(value, in_items or key == "items")
    elif isinstance(node, list):
        for value in node:
            _drop_defaults_in_list_items(value, in_items)


def openapi_schema() -> dict[str, Any]:
    spec = structural_schema(DockerSocketPolicySpec)
    _drop_defaults_in_list_items(spec)
    _add_rule_validation(spec)
    _add_client_validation(spec)
    spec["default"] = {}
    return {
        "type": "object",
        "description": "Which Docker Engine API calls the clients of one socket proxy may make.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": _status_schema(),
        },
    }


PRINTER_COLUMNS = [
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Nodes", "type": "string", "jsonPath": ".status.nodesReady"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "docker-socket-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": ["all-dockersocket"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `docker-socket-operator crd` from api/models.py. Do not edit.\n"
    body = yaml.safe_dump(build_crd(), sort_keys=False, default_flow_style=False, width=100)
    return header + "---\n" + body


def write_crds(output: Path) -> Path:
    """Write the CRD file into `output` (created if missing); returns its path."""
    output.mkdir(parents=True, exist_ok=True)
    path = output / CRD_FILENAME
    path.write_text(crd_yaml())
    return path
