"""The operator against a real control plane (etcd, kube-apiserver, controller manager,
scheduler, kwok nodes): seed scenarios, drift repair, invalid policies, schema rejections,
garbage collection, and no writes in the steady state or across an operator restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import OPERATOR_NS
from tests.support.daemons import Daemon, docker_cli, have_docker_cli
from tests.support.operatorproc import (
    Kube,
    OperatorProcess,
    condition,
    policy,
    seed_policies,
)
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import holds_for, settled, wait_for

pytestmark = pytest.mark.kube

NS = OPERATOR_NS
# Nodes each seed policy must land on (NODE_LABELS: node-0 edge+docker, node-1 docker).
EXPECTED_NODES = {
    "n8n-bot": {"kwok-node-0"},
    "caddy": {"kwok-node-0", "kwok-node-1"},
    "restart-gateway": {"kwok-node-0", "kwok-node-1"},
    "compose-shop": {"kwok-node-0", "kwok-node-1"},
    "terminals": {"kwok-node-0", "kwok-node-1", "kwok-node-2"},
}


@pytest.fixture(scope="module")
def seeded(kube: Kube, operator: OperatorProcess) -> dict[str, dict[str, Any]]:
    seeds = seed_policies()
    kube.apply(*seeds.values())
    return {name: kube.wait_ready(name, len(EXPECTED_NODES[name])) for name in seeds}


@pytest.mark.parametrize("name", sorted(EXPECTED_NODES))
def test_seed_scenario_is_served_on_matching_nodes(
    kube: Kube, seeded: dict[str, dict[str, Any]], name: str
) -> None:
    status = seeded[name]["status"]
    want = EXPECTED_NODES[name]
    assert status["endpoint"] == f"tcp://dsp-{name}.{NS}.svc:2375"
    assert status["nodes"] == {"desired": len(want), "ready": len(want)}
    assert condition(seeded[name], "Stalled")["status"] == "False"  # type: ignore[index]

    children = kube.children(name)
    assert {"ConfigMap", "DaemonSet", "Service", "NetworkPolicy"} <= set(children)
    for kind in ("ConfigMap", "DaemonSet", "Service", "NetworkPolicy"):
        (owner,) = children[kind]["metadata"]["ownerReferences"]
        assert owner["uid"] == seeded[name]["metadata"]["uid"]
    pods = children["Pods"]["items"]
    # One proxy pod per matching node, bound by the real scheduler.
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(want)
    policy_file = yaml.safe_load(children["ConfigMap"]["data"]["policy.yaml"])
    assert all("preset" not in rule for rule in policy_file["spec"]["rules"])


def test_printer_columns(kube: Kube, seeded: dict[str, dict[str, Any]]) -> None:
    out = kube.cp.kubectl("get", "dsp", "caddy").stdout.split("\n")
    assert out[0].split()[:4] == ["NAME", "READY", "NODES", "ENDPOINT"]
    assert out[1].split()[:4] == ["caddy", "True", "2/2", f"tcp://dsp-caddy.{NS}.svc:2375"]


def test_schema_rejects_bad_enum_and_two_rule_kinds(kube: Kube) -> None:
    bad_enum = kube.apply(policy("bad-enum", {"audit": "loud"}), check=False)
    assert bad_enum.returncode != 0
    assert 'Unsupported value: "loud"' in bad_enum.stderr
    two = policy("two-kinds", {"rules": [{"preset": "read-only", "allow": ["containers.list"]}]})
    rejected = kube.apply(two, check=False)
    assert rejected.returncode != 0
    assert "exactly one of preset, allow or deny" in rejected.stderr
    assert kube.policy("bad-enum") is None and kube.policy("two-kinds") is None


def test_invalid_policy_is_reported_and_nothing_applied(
    kube: Kube, operator: OperatorProcess
) -> None:
    kube.apply(policy("bogus", {"rules": [{"allow": ["containers.bogus"]}]}))

    def invalid() -> dict[str, Any] | None:
        ready = condition(kube.policy("bogus") or {}, "Ready")
        return ready if ready and ready["reason"] == "InvalidPolicy" else None

    ready = wait_for(invalid, 30, "InvalidPolicy")
    assert ready["status"] == "False"
    assert "containers.bogus" in ready["message"]
    obj = kube.policy("bogus")
    assert obj is not None
    assert condition(obj, "Stalled")["status"] == "True"  # type: ignore[index]
    holds_for(lambda: kube.children("bogus") == {}, 1, "nothing applied for the invalid bogus")
    kube.cp.kubectl("delete", "dsp", "bogus")


def test_deleted_service_comes_back(kube: Kube, seeded: dict[str, dict[str, Any]]) -> None:
    before = kube.get("service", "dsp-caddy")
    assert before is not None
    kube.cp.kubectl("delete", "service", "dsp-caddy", "-n", NS)
    after = wait_for(
        lambda: (s := kube.get("service", "dsp-caddy")) and s["metadata"]["uid"] != before["metadata"]["uid"] and s,
        30, "service dsp-caddy recreated",
    )  # fmt: skip
    assert after["spec"]["internalTrafficPolicy"] == "Local"


def test_edited_configmap_is_put_back(kube: Kube, seeded: dict[str, dict[str, Any]]) -> None:
    original = kube.get("configmap", "dsp-caddy")
    assert original is not None
    kube.cp.kubectl(
        "patch", "configmap", "dsp-caddy", "-n", NS, "--type=merge",
        "-p", '{"data": {"policy.yaml": "spec: {rules: [{allow: [\\"*\\"]}]}"}}',
    )  # fmt: skip
    restored = wait_for(
        lambda: (c := kube.get("configmap", "dsp-caddy"))
        and c["data"] == original["data"]
        and c["metadata"]["resourceVersion"] != original["metadata"]["resourceVersion"]
        and c,
        30, "configmap restored",
    )  # fmt: skip
    assert restored["data"]["policy.yaml"] == original["data"]["policy.yaml"]


def test_rule_change_reloads_in_place_without_rolling_pods(
    kube: Kube, seeded: dict[str, dict[str, Any]]
) -> None:
    name = "compose-shop"
    before = kube.children(name)
    pods_before = {p["metadata"]["uid"] for p in before["Pods"]["items"]}
    changed = seed_policies()[name]
    changed["spec"]["audit"] = "all"
    kube.apply(changed)
    wait_for(
        lambda: "audit: all" in kube.children(name)["ConfigMap"]["data"]["policy.yaml"],
        30, "configmap updated",
    )  # fmt: skip
    kube.wait_ready(name, 2)
    after = kube.children(name)
    assert (
        after["DaemonSet"]["metadata"]["generation"]
        == before["DaemonSet"]["metadata"]["generation"]
    )
    assert {p["metadata"]["uid"] for p in after["Pods"]["items"]} == pods_before


def test_node_selector_change_moves_the_proxies(
    kube: Kube, seeded: dict[str, dict[str, Any]]
) -> None:
    name = "restart-gateway"
    moved = seed_policies()[name]
    moved["spec"]["nodeSelector"] = {"dockersocket.io/role": "edge"}
    kube.apply(moved)
    obj = kube.wait_ready(name, 1, timeout=90)
    assert obj["status"]["nodes"] == {"desired": 1, "ready": 1}
    pods = wait_for(
        lambda: len(p := kube.children(name)["Pods"]["items"]) == 1 and p, 60, "old pods gone"
    )
    assert pods[0]["spec"]["nodeName"] == "kwok-node-0"


def test_resources_change_rolls_the_daemonset(
    kube: Kube, seeded: dict[str, dict[str, Any]]
) -> None:
    name = "resized"
    spec: dict[str, Any] = {"rules": [{"preset": "logs"}]}
    kube.apply(policy(name, spec))
    kube.wait_ready(name, 3)
    before = {p["metadata"]["uid"] for p in kube.children(name)["Pods"]["items"]}
    spec["resources"] = {"requests": {"cpu": "20m", "memory": "48Mi"}}
    kube.apply(policy(name, spec))

    def rolled() -> list[dict[str, Any]] | None:
        pods = kube.children(name).get("Pods", {"items": []})["items"]
        fresh = [
            p for p in pods
            if p["metadata"]["uid"] not in before and not p["metadata"].get("deletionTimestamp")
            and p["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "20m", "memory": "48Mi"}
            and p["spec"].get("nodeName")  # scheduled: a new pod has no node for a moment
        ]  # fmt: skip
        return fresh if len(fresh) == len(pods) == 3 else None

    try:
        pods = wait_for(rolled, 120, "every proxy pod replaced with the new resources")
        assert {p["spec"]["nodeName"] for p in pods} == {
            "kwok-node-0",
            "kwok-node-1",
            "kwok-node-2",
        }
        kube.wait_ready(name, 3, timeout=60)
    finally:
        kube.cp.kubectl("delete", "dsp", name, "--wait=false", check=False)
        wait_for(lambda: kube.children(name) == {}, 60, f"the children of {name} gone")


def test_a_proxy_no_node_can_take_is_named_in_the_status_until_fixed(
    kube: Kube, seeded: dict[str, dict[str, Any]]
) -> None:
    name = "oversized"
    spec: dict[str, Any] = {
        "rules": [{"preset": "logs"}],
        "nodeSelector": {"dockersocket.io/role": "edge"},  # kwok-node-0 (32 CPUs)
        "resources": {"requests": {"cpu": "64"}},
    }
    kube.apply(policy(name, spec))

    def degraded() -> dict[str, Any] | None:
        obj = kube.policy(name) or {}
        cond = condition(obj, "Degraded") or {}
        return obj if cond.get("reason") == "Unschedulable" else None

    try:
        obj = wait_for(degraded, 60, "the status to say why the proxy cannot run")
        ready = condition(obj, "Ready") or {}
        assert ready["status"] == "False" and ready["reason"] == "Unschedulable", ready
        assert ready["message"].startswith("0/1 nodes ready; Unschedulable on kwok-node-0: ")
        assert "Insufficient cpu" in ready["message"], ready
        assert (condition(obj, "Degraded") or {})["status"] == "True"
        # The scheduler keeps trying: in progress for kstatus, not Failed.
        assert (condition(obj, "Stalled") or {})["status"] == "False"
        assert (condition(obj, "Reconciling") or {})["status"] == "True"

        spec["resources"] = {"requests": {"cpu": "10m"}}
        kube.apply(policy(name, spec))
        fixed = kube.wait_ready(name, 1, timeout=90)
        assert (condition(fixed, "Degraded") or {})["status"] == "False"
        assert (condition(fixed, "Ready") or {})["message"] == "1/1 nodes ready"
    finally:
        kube.cp.kubectl("delete", "dsp", name, "--wait=false", check=False)
        wait_for(lambda: kube.children(name) == {}, 60, f"the children of {name} gone")


def test_steady_state_and_operator_restart_write_nothing(
    kube: Kube, operator: OperatorProcess, seeded: dict[str, dict[str, Any]]
) -> None:
    for name, nodes in EXPECTED_NODES.items():
        kube.wait_ready(name, len(nodes) if name != "restart-gateway" else 1, timeout=90)
    versions = settled(kube.resource_versions, 3, 60, "the last status writes and watch events")
    holds_for(lambda: kube.resource_versions() == versions, 5, "no writes in the steady state")

    operator.stop()
    operator.start()
    operator.wait_ready()
    # Through the resume handlers and the initial listing of every child:
    holds_for(
        lambda: kube.resource_versions() == versions, 8, "the restarted operator writes nothing"
    )
    assert "applying" not in operator.logs().split("became leader")[-1]


def test_deleting_a_policy_garbage_collects_its_children(
    kube: Kube, seeded: dict[str, dict[str, Any]]
) -> None:
    kube.apply(policy("short-lived", {"rules": [{"preset": "logs"}]}))
    kube.wait_ready("short-lived", 3)
    assert set(kube.children("short-lived")) >= {"ConfigMap", "DaemonSet", "Service"}
    kube.cp.kubectl("delete", "dsp", "short-lived", "--wait=true", "--timeout=30s")
    wait_for(lambda: kube.children("short-lived") == {}, 60, "children garbage-collected")


def test_operator_logs_are_json(operator: OperatorProcess) -> None:
    lines = [line for line in operator.logs().splitlines() if line.strip()]
    assert lines
    assert len(operator.log_lines()) == len(lines)


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "operator" in request.fixturenames:
        print(request.getfixturevalue("operator").logs()[-5000:])


# -- the two halves meet: the operator's ConfigMap drives the real proxy ---------------------


def _kubelet_swap(volume: Path, text: str, generation: int) -> None:
    """Lay out a ConfigMap volume the way kubelet does: files behind a `..data` symlink that is
    swapped atomically to a new timestamped directory on every update."""
    data_dir = volume / f"..2026_{generation:04d}"
    data_dir.mkdir()
    (data_dir / "policy.yaml").write_text(text)
    tmp_link = volume / "..data_tmp"
    tmp_link.symlink_to(data_dir.name)
    tmp_link.replace(volume / "..data")
    if not (volume / "policy.yaml").is_symlink():
        (volume / "policy.yaml").symlink_to("..data/policy.yaml")


def _configmap_policy(kube: Kube, name: str, generation: int) -> str:
    def current() -> str | None:
        children = kube.children(name)
        cm = children.get("ConfigMap")
        pol = kube.policy(name) or {}
        if cm is None or pol.get("status", {}).get("observedGeneration") != generation:
            return None
        text: str = cm["data"]["policy.yaml"]
        return text

    result: str = wait_for(current, 60, f"ConfigMap of {name} at generation {generation}")
    return result


def test_rendered_configmap_drives_the_real_proxy_and_reloads_in_place(
    kube: Kube, operator: OperatorProcess, dockerd: Daemon, tmp_path: Path
) -> None:
    if not have_docker_cli():
        pytest.skip("docker CLI not installed")
    dockerd.create("meet-gateway")
    dockerd.create("meet-other")
    doc = policy(
        "meet",
        {
            "rules": [
                {"allow": ["system.ping", "system.version"]},
                {"allow": ["containers.inspect", "containers.restart"],
                 "containers": {"names": ["meet-gateway"]}},
            ],
        },
    )  # fmt: skip
    kube.apply(doc)
    kube.wait_ready("meet", 3)
    volume = tmp_path / "configmap"
    volume.mkdir()
    _kubelet_swap(volume, _configmap_policy(kube, "meet", 1), 1)
    with ProxyProcess(
        dockerd.socket_path, tmp_path / "proxy", policy_path=volume / "policy.yaml"
    ) as px:
        assert docker_cli(px.docker_host, "restart", "meet-gateway").returncode == 0
        denied = docker_cli(px.docker_host, "restart", "meet-other")
        assert denied.returncode != 0 and b"blocked by policy" in denied.stderr
        assert docker_cli(px.docker_host, "ps").returncode != 0
        pid = px.proc.pid if px.proc else None

        # A policy change reaches the proxy through the ConfigMap, without a restart.
        doc["spec"]["rules"].append({"allow": ["containers.list"]})
        kube.apply(doc)
        _kubelet_swap(volume, _configmap_policy(kube, "meet", 2), 2)
        wait_for(
            lambda: docker_cli(px.docker_host, "ps").returncode == 0,
            10,
            "proxy reloaded the ConfigMap",
        )
        assert px.proc is not None and px.proc.pid == pid and px.alive()
        assert docker_cli(px.docker_host, "restart", "meet-other").returncode != 0
    dockerd.remove("meet-gateway")
    dockerd.remove("meet-other")
