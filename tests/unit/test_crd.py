"""The CRD is generated from the models, committed, structural, and says what users see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from docker_socket_operator.api.crd import CRD_FILENAME, RULE_ONE_KIND, build_crd, crd_yaml

REPO = Path(__file__).resolve().parents[2]


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_is_fresh() -> None:
    committed = (REPO / "crds" / CRD_FILENAME).read_text()
    assert committed == crd_yaml(), "crds/ is stale: run `make crds`"


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"):
            assert banned not in node, f"{path} has {banned}"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("type") == "null":
            raise AssertionError(f"{path} is typed null")


def test_identity_scope_and_columns() -> None:
    crd = build_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "dockersocketpolicies.dockersocket.io"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == "DockerSocketPolicy"
    assert spec["names"]["shortNames"] == ["dsp"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert set(columns) == {"Ready", "Nodes", "Endpoint", "Age"}


def test_enums_patterns_defaults_and_cel() -> None:
    spec = _schema()["properties"]["spec"]
    props = spec["properties"]
    assert props["audit"]["enum"] == ["none", "denied", "all"]
    assert props["audit"]["default"] == "denied"
    assert props["port"] == {"default": 2375, "maximum": 65535, "minimum": 1, "type": "integer"}
    rule = props["rules"]["items"]
    assert "read-only" in rule["properties"]["preset"]["enum"]
    assert rule["properties"]["preset"]["nullable"] is True
    assert "pattern" in rule["properties"]["allow"]["items"]
    assert rule["x-kubernetes-validations"][0]["rule"] == RULE_ONE_KIND
    assert props["seLinuxType"]["pattern"] == "^[a-z0-9_]+$"
    # metadata stays untyped beyond "object": the API server owns it.
    assert _schema()["properties"]["metadata"] == {"type": "object"}


def test_status_conditions_are_a_map_by_type() -> None:
    status = _schema()["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_yaml_round_trips() -> None:
    docs = [d for d in yaml.safe_load_all(crd_yaml()) if d]
    assert docs == [build_crd()]
