"""Nodes without a ready proxy, and why, in the policy's status: from the proxy pods and their
Warning Events as the API server returns them (shapes taken from a real kubelet 1.34)."""

from __future__ import annotations

import copy
from typing import Any

from docker_socket_operator.controller.nodeproblems import NodeProblem, describe, node_problems
from docker_socket_operator.controller.status import Outcome, compute_status, status_patch

SOCKET = "/tmp/dso-no-such-dir/docker.sock"
MOUNT_FAILED = (
    'MountVolume.SetUp failed for volume "docker-socket" : hostPath type check failed: '
    f"{SOCKET} is not a socket file"
)


def pod(
    node: str,
    uid: str,
    *,
    ready: bool = False,
    phase: str = "Pending",
    bound: bool = True,
    waiting: str | None = None,
    scheduled: dict[str, str] | None = None,
    **container: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
    }  # fmt: skip
    if bound:
        spec["nodeName"] = node
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", **scheduled})
    status: dict[str, Any] = {"phase": phase, "conditions": conditions}
    if waiting is not None or container:
        state = {"waiting": {"reason": waiting, "message": "kubelet text"}} if waiting else {}
        status["containerStatuses"] = [
            {"name": "proxy", "image": "dso/proxy:dev", "state": state, **container}
        ]
    return {"metadata": {"name": f"dsp-p-{uid}", "uid": uid}, "spec": spec, "status": status}


def event(uid: str, reason: str, message: str, count: int = 1) -> dict[str, Any]:
    return {
        "involvedObject": {"kind": "Pod", "uid": uid, "name": f"dsp-p-{uid}"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": count,
    }


def test_a_node_without_the_socket_is_named_with_the_kubelets_reason() -> None:
    pods = [pod("node-a", "u1"), pod("node-b", "u2", ready=True, phase="Running")]
    events = [
        event("u1", "FailedMount", MOUNT_FAILED, count=4),
        # The kubelet's generic follow-up every two minutes: the specific one wins.
        event("u1", "FailedMount", "Unable to attach or mount volumes: unmounted volumes="
              "[docker-socket], unattached volumes=[]: timed out waiting for the condition"),
    ]  # fmt: skip
    (problem,) = node_problems(pods, events, ["node-a", "node-b"])
    assert problem == NodeProblem(
        "node-a", "SocketMissing", f"hostPath type check failed: {SOCKET} is not a socket file"
    )
    assert problem.degrading


def test_events_of_other_pods_and_old_incarnations_are_not_this_pods() -> None:
    events = [
        event("old-uid", "FailedMount", MOUNT_FAILED),
        event("u9", "FailedMount", MOUNT_FAILED),
    ]
    (problem,) = node_problems([pod("node-a", "u1", phase="Pending")], events, ["node-a"])
    assert (problem.reason, problem.degrading) == ("ProxyStarting", False)


def test_a_pod_not_yet_bound_is_placed_by_its_node_affinity() -> None:
    unbound = pod("node-a", "u1", bound=False, scheduled={
        "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 1 Insufficient cpu.",
    })  # fmt: skip
    (problem,) = node_problems([unbound], [], ["node-a"])
    assert problem == NodeProblem(
        "node-a", "Unschedulable", "0/3 nodes are available: 1 Insufficient cpu."
    )


def test_image_pull_failures_read_the_same_whichever_back_off_phase() -> None:
    texts = {
        node_problems([pod("n", "u", waiting=w)], [], ["n"])[0]
        for w in ("ErrImagePull", "ImagePullBackOff")
    }
    assert {(p.reason, p.detail) for p in texts} == {
        ("ImagePullFailed", "image dso/proxy:dev cannot be pulled")
    }


def test_a_crashing_proxy_reads_the_same_between_two_back_offs() -> None:
    last = {"terminated": {"reason": "Error", "exitCode": 2}}
    waiting = pod(
        "n", "u", phase="Running", waiting="CrashLoopBackOff", restartCount=3, lastState=last
    )
    running = pod("n", "u", phase="Running", restartCount=4, lastState=last)
    running["status"]["containerStatuses"][0]["state"] = {"running": {}}
    seen = {node_problems([p], [], ["n"])[0] for p in (waiting, running)}
    assert seen == {
        NodeProblem("n", "ProxyCrashing", "container proxy keeps exiting (Error, exit code 2)")
    }


def test_a_slow_start_is_not_degraded_a_failing_readiness_probe_is() -> None:
    running = pod("n", "u", phase="Running")
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    (first,) = node_problems([running], [event("u", "Unhealthy", probe, count=1)], ["n"])
    assert (first.reason, first.degrading) == ("ProxyStarting", False)
    (later,) = node_problems([running], [event("u", "Unhealthy", probe, count=7)], ["n"])
    assert (later.reason, later.detail, later.degrading) == ("ProxyNotReady", probe, True)


def test_sandbox_failures_leave_out_the_sandbox_id_that_changes_on_every_attempt() -> None:
    found = {
        node_problems([pod("n", "u")], [event("u", "FailedCreatePodSandBox",
            f'Failed to create pod sandbox: failed to setup network for sandbox "{sid}"')], ["n"])[0]
        for sid in ("0f3a9c", "77be21")
    }  # fmt: skip
    assert len(found) == 1 and next(iter(found)).reason == "ProxyNotStarting"


def test_ready_nodes_terminating_pods_and_missing_pods() -> None:
    leaving = pod("node-a", "u0", phase="Running")
    leaving["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    pods = [leaving, pod("node-a", "u1", ready=True, phase="Running"), pod("node-b", "u2")]
    problems = node_problems(pods, [], ["node-a", "node-b", "node-c"])
    assert [(p.node, p.reason) for p in problems] == [
        ("node-b", "ProxyStarting"),
        ("node-c", "NoProxyPod"),
    ]


def test_the_same_failure_on_many_nodes_is_told_once() -> None:
    nodes = [f"node-{i}" for i in range(8)]
    pods = [pod(n, f"u{i}") for i, n in enumerate(nodes)]
    events = [event(f"u{i}", "FailedMount", MOUNT_FAILED) for i in range(7)]
    text = describe(node_problems(pods, events, nodes))
    assert text == (
        "SocketMissing on node-0, node-1, node-2, node-3, node-4 and 2 more: hostPath type "
        f"check failed: {SOCKET} is not a socket file; ProxyStarting on node-7: starting"
    )


# -- in the policy's status ----------------------------------------------------------------------


def _policy() -> dict[str, Any]:
    return {"metadata": {"name": "p", "generation": 2}, "spec": {}}


def _ds(desired: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1, "desiredNumberScheduled": desired, "numberReady": ready,
            "updatedNumberScheduled": desired, "numberAvailable": ready,
        },
    }  # fmt: skip


def _conds(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_status_names_the_node_and_why_and_is_degraded_not_stalled() -> None:
    problems = node_problems(
        [pod("node-a", "u1"), pod("node-b", "u2", ready=True)],
        [event("u1", "FailedMount", MOUNT_FAILED)],
        ["node-a", "node-b"],
    )
    status = compute_status(_policy(), Outcome(matching_nodes=2), _ds(2, 1), "T0", problems)
    c = _conds(status)
    assert c["Ready"]["status"] == "False" and c["Ready"]["reason"] == "SocketMissing"
    assert c["Ready"]["message"] == (
        f"1/2 nodes ready; SocketMissing on node-a: hostPath type check failed: {SOCKET} "
        "is not a socket file"
    )
    assert (c["Degraded"]["status"], c["Degraded"]["reason"]) == ("True", "SocketMissing")
    assert "node-a" in c["Degraded"]["message"]
    # The kubelet keeps retrying: still in progress for kstatus, not Failed.
    assert c["Reconciling"]["status"] == "True" and c["Stalled"]["status"] == "False"
    # The same failure seen again (the event's count moved on) writes nothing.
    again = node_problems(
        [pod("node-a", "u1"), pod("node-b", "u2", ready=True)],
        [event("u1", "FailedMount", MOUNT_FAILED, count=9)],
        ["node-a", "node-b"],
    )
    later = compute_status({**_policy(), "status": status}, Outcome(matching_nodes=2), _ds(2, 1),
                           "T1", again)  # fmt: skip
    assert status_patch(status, later) is None


def test_a_starting_node_is_named_without_degrading_and_recovery_clears_it() -> None:
    problems = node_problems([pod("node-a", "u1")], [], ["node-a"])
    status = compute_status(_policy(), Outcome(matching_nodes=1), _ds(1, 0), "T0", problems)
    c = _conds(status)
    assert (c["Ready"]["reason"], c["Degraded"]["status"]) == ("ProxiesNotReady", "False")
    assert c["Ready"]["message"] == "0/1 nodes ready; ProxyStarting on node-a: starting"
    ready = compute_status(
        {**_policy(), "status": copy.deepcopy(status)}, Outcome(matching_nodes=1), _ds(1, 1), "T1"
    )
    c = _conds(ready)
    assert (c["Ready"]["status"], c["Degraded"]["status"]) == ("True", "False")
    assert c["Ready"]["message"] == "1/1 nodes ready"
