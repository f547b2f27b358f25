"""Compare-before-apply: what makes the operator write a child, and what does not."""

from __future__ import annotations

import copy
from typing import Any

from docker_socket_operator.controller.apply import (
    APPLIED_HASH_ANNOTATION,
    is_subset,
    needs_apply,
    owner_policy,
    with_applied_hash,
)
from docker_socket_operator.controller.render import render
from tests.support.operatorproc import policy


def _live(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server hands back: our fields plus defaults and bookkeeping."""
    live = copy.deepcopy(desired)
    live["metadata"].update(resourceVersion="42", uid="x", generation=1)
    live["status"] = {"numberReady": 1}
    if live["kind"] == "Service":
        live["spec"].update(clusterIP="10.96.0.10", sessionAffinity="None")
    if live["kind"] == "NetworkPolicy" and not live["spec"]["ingress"]:
        del live["spec"]["ingress"]  # empty lists are dropped
    return live


def _children() -> list[dict[str, Any]]:
    doc = policy("caddy", {"rules": [{"allow": ["containers.list"]}]})
    doc["metadata"]["uid"] = "u1"
    return [with_applied_hash(o) for o in render(doc, "ns", "img")]


def test_unchanged_children_are_not_written() -> None:
    for desired in _children():
        assert not needs_apply(desired, _live(desired)), desired["kind"]


def test_missing_or_edited_children_are_written() -> None:
    for desired in _children():
        assert needs_apply(desired, None)
        edited = _live(desired)
        edited["metadata"]["labels"]["dockersocket.io/policy"] = "other"
        assert needs_apply(desired, edited)


def test_dropped_field_changes_the_applied_hash() -> None:
    doc = policy("caddy", {"seLinuxType": "spc_t"})
    doc["metadata"]["uid"] = "u1"
    before = with_applied_hash(render(doc, "ns", "img")[1])
    doc["spec"].pop("seLinuxType")
    after = with_applied_hash(render(doc, "ns", "img")[1])
    # The new pod spec is a subset of the old live one: a subset check alone would not see it.
    assert is_subset(after["spec"]["template"]["spec"], before["spec"]["template"]["spec"])
    assert needs_apply(after, _live(before))
    key = APPLIED_HASH_ANNOTATION
    assert before["metadata"]["annotations"][key] != after["metadata"]["annotations"][key]


def test_subset_rules() -> None:
    assert is_subset({"a": [], "b": {}}, {})
    assert is_subset({"a": [1]}, {"a": [1], "b": 2})
    assert not is_subset({"a": [1]}, {"a": [1, 2]})
    assert not is_subset({"a": "1"}, {"a": 1})


def test_owner_policy() -> None:
    obj = _children()[0]
    assert owner_policy(obj) == "caddy"
    assert owner_policy({"metadata": {}}) is None
