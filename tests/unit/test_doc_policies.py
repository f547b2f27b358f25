"""Every policy the README and the docs show (a whole DockerSocketPolicy, a `spec:` or a bare
`rules:` block) validates and compiles: a reader who copies one into policy.yaml and runs
`docker-socket-operator check -f policy.yaml ...` gets decisions, not an error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator.api.models import DockerSocketPolicy, DockerSocketPolicySpec
from docker_socket_operator.policy.compile import compile_policy

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def as_policy(doc: Any) -> dict[str, Any] | None:
    """The block as a whole policy, or None when it is not one (a pod spec, compose...)."""
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "DockerSocketPolicy":
        return doc
    if set(doc) == {"spec"} and isinstance(doc["spec"], dict) and "rules" in doc["spec"]:
        return {"metadata": {"name": "doc"}, **doc}
    if "rules" in doc and set(doc) <= set(DockerSocketPolicySpec.model_fields):
        return {"metadata": {"name": "doc"}, "spec": doc}
    return None


def shown_policies() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for page in PAGES:
        for n, block in enumerate(YAML_BLOCK.findall(page.read_text())):
            policy = as_policy(yaml.safe_load(block))
            if policy is not None:
                out.append((f"{page.relative_to(REPO)}[{n}]", policy))
    return out


POLICIES = shown_policies()


def test_the_docs_show_policies() -> None:
    assert {where.split("[")[0] for where, _ in POLICIES} >= {
        "README.md", "docs/presets.md", "docs/recipes.md",
    }  # fmt: skip


@pytest.mark.parametrize(("where", "doc"), POLICIES, ids=[w for w, _ in POLICIES])
def test_a_policy_in_the_docs_compiles(where: str, doc: dict[str, Any]) -> None:
    policy = DockerSocketPolicy.model_validate(doc)
    compile_policy(policy.spec, policy.metadata.name)
