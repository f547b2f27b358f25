"""Policy status: kstatus-compatible conditions from the DaemonSet, and no needless writes."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.controller.status import Outcome, compute_status, status_patch

EP = "tcp://dsp-caddy.dso.svc:2375"


def _policy(generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"metadata": {"name": "caddy", "generation": generation}, "spec": {}}
    if status is not None:
        doc["status"] = status
    return doc


def _ds(desired: int, ready: int, updated: int, *, current: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2 if current else 1,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "numberAvailable": ready,
        },
    }


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready_when_every_node_runs_an_updated_ready_proxy() -> None:
    status = compute_status(_policy(), Outcome(endpoint=EP), _ds(3, 3, 3), now="T0")
    assert status["observedGeneration"] == 3
    assert status["endpoint"] == EP
    assert status["nodes"] == {"desired": 3, "ready": 3}
    assert status["nodesReady"] == "3/3"
    conds = conditions(status)
    assert conds["Ready"] == ("True", "Available")
    assert conds["Progressing"][0] == "False"
    assert conds["Degraded"][0] == "False"
    # kstatus reads these two: neither set means Current.
    assert conds["Reconciling"][0] == "False"
    assert conds["Stalled"][0] == "False"
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_progressing_while_rolling_out() -> None:
    for ds in (_ds(3, 2, 3), _ds(3, 3, 1), _ds(3, 3, 3, current=False), None):
        conds = conditions(compute_status(_policy(), Outcome(endpoint=EP), ds))
        assert conds["Ready"][0] == "False"
        assert conds["Progressing"][0] == "True"
        assert conds["Reconciling"][0] == "True"
        assert conds["Stalled"][0] == "False"


def test_invalid_policy_is_stalled_not_ready() -> None:
    status = compute_status(_policy(), Outcome("InvalidPolicy", "unknown operation"), None)
    conds = conditions(status)
    assert conds["Ready"] == ("False", "InvalidPolicy")
    assert conds["Degraded"] == ("True", "InvalidPolicy")
    assert conds["Stalled"] == ("True", "InvalidPolicy")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "unknown operation"
    assert "nodes" not in status and "endpoint" not in status


def test_no_matching_nodes_is_degraded() -> None:
    conds = conditions(compute_status(_policy(), Outcome(endpoint=EP), _ds(0, 0, 0)))
    assert conds["Ready"] == ("False", "NoMatchingNodes")
    assert conds["Degraded"] == ("True", "NoMatchingNodes")


def test_transition_time_moves_only_with_the_status() -> None:
    first = compute_status(_policy(), Outcome(endpoint=EP), _ds(3, 2, 3), now="T0")
    again = compute_status(_policy(status=first), Outcome(endpoint=EP), _ds(3, 2, 3), now="T1")
    assert again == first
    assert status_patch(first, again) is None  # steady state: no write
    done = compute_status(_policy(status=first), Outcome(endpoint=EP), _ds(3, 3, 3), now="T2")
    times = {c["type"]: c["lastTransitionTime"] for c in done["conditions"]}
    assert times["Ready"] == "T2" and times["Progressing"] == "T2"
    assert times["Degraded"] == "T0" and times["Stalled"] == "T0"


def test_patch_nulls_vanished_keys() -> None:
    old = compute_status(_policy(), Outcome(endpoint=EP), _ds(1, 1, 1), now="T0")
    new = {"observedGeneration": 4, "conditions": []}
    patch = status_patch(old, new)
    assert patch is not None
    assert patch["status"]["nodes"] is None and patch["status"]["endpoint"] is None
    assert patch["status"]["conditions"] == []
