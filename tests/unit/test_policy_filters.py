"""Answers filtered to what the client may see: lists, events, inspect Env."""

from __future__ import annotations

from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.filters import (
    container_facts_from_inspect,
    event_visible,
    filter_container_list,
    redact_container_inspect,
)
from docker_socket_operator.policy.types import BadBody


def compiled(spec: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(DockerSocketPolicySpec.model_validate(spec))


ITEMS = [
    {"Id": "1", "Names": ["/web"], "Labels": {"team": "ci"}},
    {"Id": "2", "Names": ["/db", "/web/db"], "Labels": {"team": "data"}},
    {"Id": "3", "Names": ["/ci-job"], "Labels": None},
    "garbage",
]


def event(name: str, labels: dict[str, str], kind: str = "container") -> dict[str, Any]:
    return {
        "Type": kind,
        "Action": "start",
        "Actor": {"ID": "x", "Attributes": {"name": name, **labels}},
    }


def test_no_visibility_no_filtering() -> None:
    p = compiled({"rules": [{"allow": ["containers.list", "system.events"]}]})
    assert not p.filters_containers
    assert filter_container_list(p, ITEMS) is ITEMS
    assert event_visible(p, event("db", {}))


def test_visibility_filters_list_and_events() -> None:
    p = compiled(
        {
            "rules": [{"preset": "read-only"}],
            "visibility": {"containers": {"labels": {"team": "ci"}}},
        }
    )
    assert p.filters_containers
    assert [i["Id"] for i in filter_container_list(p, ITEMS)] == ["1"]
    assert event_visible(p, event("web", {"team": "ci"}))
    assert not event_visible(p, event("db", {"team": "data"}))
    assert event_visible(p, event("bridge", {}, kind="network"))
    assert event_visible(p, event("nginx", {}, kind="image"))
    assert not event_visible(p, "not an event")
    assert not event_visible(p, {"status": "start", "id": "x", "from": "img"})  # old shape


def test_scoped_list_rule_filters_by_its_selector() -> None:
    p = compiled(
        {
            "rules": [
                {
                    "allow": ["containers.list", "system.events"],
                    "containers": {"names": ["web", "ci-*"]},
                }
            ]
        }
    )
    assert [i["Id"] for i in filter_container_list(p, ITEMS)] == ["1", "3"]
    assert not event_visible(p, event("db", {}))
    assert event_visible(p, event("ci-job", {}))


def test_link_alias_names_do_not_count() -> None:
    p = compiled({"rules": [{"allow": ["containers.list"], "containers": {"names": ["web*"]}}]})
    # '/web/db' is db's link alias inside web, not a name of db
    assert [i["Id"] for i in filter_container_list(p, ITEMS)] == ["1"]


@pytest.mark.parametrize("redact", [True, False])
def test_redact_env(redact: bool) -> None:
    p = compiled({"rules": [], "visibility": {"redactEnv": redact}})
    doc: dict[str, Any] = {"Id": "1", "Config": {"Env": ["A=secret", "B=", "C"]}, "Name": "/web"}
    out = redact_container_inspect(p, doc)
    if redact:
        assert out["Config"]["Env"] == ["A=<redacted>", "B=<redacted>", "C"]
        assert doc["Config"]["Env"][0] == "A=secret"  # input untouched
    else:
        assert out["Config"]["Env"][0] == "A=secret"
    assert redact_container_inspect(p, {"Config": None}) == {"Config": None}
    assert redact_container_inspect(p, []) == []


def test_container_facts_from_inspect() -> None:
    doc = {"Id": "f" * 64, "Name": "/web", "Config": {"Labels": {"a": "b"}, "Image": "nginx:1"}}
    facts = container_facts_from_inspect(doc)
    assert (facts.id, facts.name, dict(facts.labels), facts.image) == (
        "f" * 64,
        "web",
        {"a": "b"},
        "nginx:1",
    )
    bare = container_facts_from_inspect({"Id": "1", "Config": {"Labels": None}})
    assert bare.name == "" and dict(bare.labels) == {}
    with pytest.raises(BadBody):
        container_facts_from_inspect({"message": "No such container"})
