"""The shipped example policies (README, recipes, demo, e2e) are valid, render, and the rendered
ConfigMap decides exactly as the policy it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator.api.models import DockerSocketPolicy
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS
from docker_socket_operator.controller.render import RenderOptions, render
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "policies").glob("*.yaml"))
CONTAINERS = [
    ContainerFacts("a" * 64, "mcp-gateway"),
    ContainerFacts("b" * 64, "shop-web", {"com.docker.compose.project": "shop"}),
    ContainerFacts("c" * 64, "term-1", {"ide.example/terminal": "true"}),
    ContainerFacts("d" * 64, "app", {"chatops.example/managed": "true", "caddy": "x"}),
]


def decisions(policy: CompiledPolicy) -> list[bool]:
    out = []
    for op in ALL_OPERATIONS:
        for c in [None, *CONTAINERS] if op.target in ("container", "exec") else [None]:
            req = RequestFacts(op.method, op.template, op, {}, {}, None, c)
            out.append(decide(policy, req).allow)
    return out


def test_there_are_five_seed_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {
        "n8n-bot", "caddy-discovery", "restart-one", "compose-admin", "terminal-manager",
    }  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_renders_to_a_configmap_that_decides_the_same(path: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    model = DockerSocketPolicy.model_validate(doc)
    original = compile_policy(model.spec)
    doc["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
    objs = render(doc, "dso-system", "docker-socket-operator:0.1.0", RenderOptions())
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["ConfigMap", "DaemonSet", "NetworkPolicy", "Service"]
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap"]
    rendered = DockerSocketPolicy.model_validate(yaml.safe_load(cm["data"]["policy.yaml"]))
    from_configmap = compile_policy(rendered.spec)
    allowed = decisions(original)
    assert any(allowed), "an example that allows nothing"
    assert decisions(from_configmap) == allowed
