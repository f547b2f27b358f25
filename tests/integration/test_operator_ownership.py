"""The operator owns its children completely, on a real control plane: fields other managers
ADD are removed (and reported), fields Kubernetes defaults are left alone (no writes in the
steady state), a deleted policy's children go without waiting for the garbage collector,
clients must be explicit (the CRD's CEL refuses the rest) and the proxy runs non-root."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docker_socket_operator.controller.render import render
from tests.integration.conftest import OPERATOR_NS
from tests.support.operatorproc import Kube, OperatorProcess, condition, policy
from tests.support.waiting import holds_for, settled, wait_for

pytestmark = pytest.mark.kube

NS = OPERATOR_NS
CLIENT = {"namespace": "ci", "podSelector": {"matchLabels": {"app": "runner"}}}


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "operator" in request.fixturenames:
        print(request.getfixturevalue("operator").logs()[-6000:])


def _policy(name: str, **spec: Any) -> dict[str, Any]:
    return policy(name, {"clients": [CLIENT], "rules": [{"preset": "read-only"}], **spec})


# This test runs first in the module: the CRD was installed moments ago, so the garbage
# collector does not know the policy kind yet (it learns kinds at its 30 s discovery resync
# and logs "unable to get REST mapping" meanwhile); the operator must not wait for it.
def test_deleted_policy_children_go_at_once_on_a_fresh_crd(
    kube: Kube, operator: OperatorProcess
) -> None:
    kube.apply(_policy("fresh"))
    kube.wait_ready("fresh", 3)
    assert set(kube.children("fresh")) >= {"ConfigMap", "DaemonSet", "Service", "NetworkPolicy"}
    started = time.monotonic()
    kube.cp.kubectl("delete", "dsp", "fresh", "--wait=true", "--timeout=30s")
    wait_for(
        lambda: not {"ConfigMap", "DaemonSet", "Service", "NetworkPolicy"} & set(
            kube.children("fresh")
        ),
        15, "children deleted by the operator",
    )  # fmt: skip
    print(f"MEASURE delete->children gone {time.monotonic() - started:.2f}s")
    assert "deleted the children of policy fresh" in operator.logs()


# (kind, name suffix, JSON merge patch, a function telling whether the addition is present)
ADDITIONS: list[tuple[str, str, dict[str, Any], Any]] = [
    (
        "daemonset", "hostpid",
        {"spec": {"template": {"spec": {"hostPID": True}}}},
        lambda o: o["spec"]["template"]["spec"].get("hostPID"),
    ),
    (
        "daemonset", "rootvolume",
        {"spec": {"template": {"spec": {"volumes": [
            {"name": "host-root", "hostPath": {"path": "/"}}]}}}},
        lambda o: any(v["name"] == "host-root" for v in o["spec"]["template"]["spec"]["volumes"]),
    ),
    (
        "daemonset", "nodeselector",
        {"spec": {"template": {"spec": {"nodeSelector": {"dockersocket.io/role": "edge"}}}}},
        lambda o: o["spec"]["template"]["spec"].get("nodeSelector"),
    ),
    (
        "networkpolicy", "egress",
        {"spec": {"egress": [{}]}},
        lambda o: "egress" in o["spec"],
    ),
    (
        "service", "externalips",
        {"spec": {"externalIPs": ["203.0.113.7"]}},
        lambda o: o["spec"].get("externalIPs"),
    ),
    (
        "configmap", "extrakey",
        {"data": {"extra.yaml": "spec: {rules: [{allow: ['*']}]}"}},
        lambda o: "extra.yaml" in o.get("data", {}),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "suffix", "patch", "present"), ADDITIONS, ids=[a[1] for a in ADDITIONS]
)
def test_added_fields_are_removed_and_reported(
    kube: Kube,
    operator: OperatorProcess,
    kind: str,
    suffix: str,
    patch: dict[str, Any],
    present: Any,
) -> None:
    name = f"add-{suffix}"
    kube.apply(_policy(name))
    kube.wait_ready(name, 3)
    child = f"dsp-{name}"
    kube.cp.kubectl(
        "patch", kind, child, "-n", NS, "--type=strategic", "--field-manager=intruder",
        "-p", json.dumps(patch),
    )  # fmt: skip
    started = time.monotonic()
    repaired = wait_for(
        lambda: (o := kube.get(kind, child)) is not None and not present(o) and o,
        30, f"{kind} {child} repaired",
    )  # fmt: skip
    print(f"MEASURE additive drift {suffix} repaired in {time.monotonic() - started:.2f}s")
    with_fields = kube.cp.kubectl_json("get", kind, child, "-n", NS, "--show-managed-fields")
    managers = {e["manager"] for e in with_fields["metadata"]["managedFields"]}
    assert "intruder" not in managers
    events = kube.cp.kubectl_json(
        "get", "events", "-n", NS, "--field-selector", f"involvedObject.name={child}"
    )["items"]
    assert any(e["reason"] == "DriftRepaired" for e in events), events
    assert f"drift: {repaired['kind']} {NS}/{child}" in operator.logs()
    kube.wait_ready(name, 3, timeout=60)  # the narrowed DaemonSet comes back to every node
    kube.cp.kubectl("delete", "dsp", name)


# Fields the API server and the DaemonSet controller fill in. They are not ours and not
# drift: the operator must leave them (and so write nothing in the steady state).
DEFAULTED = {
    "daemonset": [
        "metadata.annotations.deprecated\\.daemonset\\.template\\.generation",
        "spec.revisionHistoryLimit",
        "spec.template.spec.dnsPolicy",
        "spec.template.spec.restartPolicy",
        "spec.template.spec.schedulerName",
        "spec.template.spec.terminationGracePeriodSeconds",
        "spec.template.spec.containers[0].terminationMessagePath",
        "spec.template.spec.containers[0].terminationMessagePolicy",
        "spec.template.spec.containers[0].readinessProbe.timeoutSeconds",
        "spec.template.spec.containers[0].readinessProbe.successThreshold",
        "spec.updateStrategy.rollingUpdate.maxSurge",
    ],
    "service": [
        "spec.clusterIP",
        "spec.clusterIPs",
        "spec.ipFamilies",
        "spec.ipFamilyPolicy",
        "spec.sessionAffinity",
    ],
}


def _lookup(obj: Any, path: str) -> Any:
    for part in path.replace("\\.", "\0").split("."):
        part = part.replace("\0", ".")
        name, _, index = part.partition("[")
        obj = obj.get(name) if isinstance(obj, dict) else None
        if index:
            obj = obj[int(index.rstrip("]"))] if isinstance(obj, list) else None
    return obj


def test_defaulted_fields_are_kept_and_the_steady_state_writes_nothing(
    kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    doc = _policy("steady")
    started = time.monotonic()
    kube.apply(doc)
    kube.wait_ready("steady", 3)
    print(f"MEASURE apply->Ready {time.monotonic() - started:.2f}s")
    live_policy = kube.policy("steady")
    assert live_policy is not None
    rendered = {o["kind"].lower(): o for o in render(live_policy, NS, operator.image)}
    for kind, paths in DEFAULTED.items():
        live = kube.get(kind, "dsp-steady")
        assert live is not None
        for path in paths:
            assert _lookup(live, path) is not None, f"{kind} {path} not defaulted"
            assert _lookup(rendered[kind], path) is None, f"{kind} {path} is rendered"

    def state() -> tuple[dict[str, str], int]:
        return kube.resource_versions(), operator.logs().count("applying")

    versions, writes_before = settled(state, 3, 60, "the last status writes and watch events")
    holds_for(lambda: state() == (versions, writes_before), 6, "no writes in the steady state")
    assert kube.resource_versions() == versions, "writes in the steady state"
    assert operator.logs().count("applying") == writes_before
    print("MEASURE steady-state writes over 6s: 0")
    kube.cp.kubectl("delete", "dsp", "steady")


@pytest.mark.parametrize(
    ("clients", "says"),
    [
        ([{}], "names its namespace"),
        # The old schema's "no namespaceSelector": it meant every namespace. Now refused.
        ([{"podSelector": {"matchLabels": {"app": "x"}}}], "names its namespace"),
        ([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "x"}}}],
         "names its namespace"),
        ([{"namespace": "ci"}], "allPods: true"),
        ([{"namespace": "ci", "podSelector": {}}], "allPods: true"),
    ],
)  # fmt: skip
def test_implicit_clients_are_refused_by_the_crd(
    kube: Kube, clients: list[dict[str, Any]], says: str
) -> None:
    rejected = kube.apply(policy("implicit", {"clients": clients}), check=False)
    assert rejected.returncode != 0
    assert says in rejected.stderr
    assert kube.policy("implicit") is None


def test_explicit_clients_render_as_written(kube: Kube, operator: OperatorProcess) -> None:
    doc = policy(
        "explicit",
        {
            "clients": [
                {"namespace": "ci", "podSelector": {"matchLabels": {"app": "runner"}}},
                {"namespaces": ["ops", "dev"], "allPods": True},
            ]
        },
    )
    kube.apply(doc)
    kube.wait_ready("explicit", 3)
    netpol = kube.get("networkpolicy", "dsp-explicit")
    assert netpol is not None
    (rule,) = netpol["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ci"}},
            "podSelector": {"matchLabels": {"app": "runner"}},
        },
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In",
                     "values": ["dev", "ops"]}
                ]
            },
            "podSelector": {},
        },
    ]  # fmt: skip
    kube.cp.kubectl("delete", "dsp", "explicit")


def test_proxy_runs_non_root_with_the_socket_group(kube: Kube, operator: OperatorProcess) -> None:
    kube.apply(_policy("nonroot", socket={"group": 998}))
    obj = kube.wait_ready("nonroot", 3)
    assert not obj["status"].get("warnings")
    ds = kube.get("daemonset", "dsp-nonroot")
    assert ds is not None
    ctx = ds["spec"]["template"]["spec"]["securityContext"]
    assert ctx["runAsUser"] == 65532 and ctx["runAsNonRoot"] is True
    assert ctx["supplementalGroups"] == [998]
    pods = kube.children("nonroot")["Pods"]["items"]
    assert all(p["spec"]["securityContext"]["runAsUser"] == 65532 for p in pods)

    kube.apply(_policy("nonroot", socket={"group": 998}, runAsRoot=True))
    obj = wait_for(
        lambda: (p := kube.policy("nonroot")) and p["status"].get("warnings") and p,
        30, "root warning",
    )  # fmt: skip
    assert "runAsRoot" in obj["status"]["warnings"][0]
    assert condition(obj, "Ready") is not None
    ds = wait_for(
        lambda: (d := kube.get("daemonset", "dsp-nonroot"))
        and d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 0 and d,
        30, "root DaemonSet",
    )  # fmt: skip
    assert ds["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is False
    kube.cp.kubectl("delete", "dsp", "nonroot")
