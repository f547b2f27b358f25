"""RBAC is exactly what the operator uses: deploy/install.yaml's grants, applied as shipped,
against the requests the API server's audit log records for the operator's ServiceAccount
through a full life cycle (create, additive drift, deleted child, policy deletion, Lease
acquire, renew and release). A grant nobody used fails the test."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import ControlPlane
from tests.support.operatorproc import REPO, Kube, OperatorProcess, condition, policy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kube

NS = "docker-socket-operator"
USER = f"system:serviceaccount:{NS}:docker-socket-operator"
# Authorization checks that are not requests of their own, so the audit log cannot show them.
NOT_REQUESTS = {
    # blockOwnerDeletion on a child's ownerReference: checked against the owner's finalizers.
    ("dockersocket.io", "dockersocketpolicies/finalizers", "update"),
}


def granted(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = set()
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb))
    return out


def used(events: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = set()
    for event in events:
        if event.get("user", {}).get("username") != USER or "objectRef" not in event:
            continue
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        verb = event["verb"]
        out.add((ref.get("apiGroup", ""), resource, verb))
        # A server-side apply that creates needs `create` as well (201 Created).
        if verb == "patch" and event.get("responseStatus", {}).get("code") == 201:
            out.add((ref.get("apiGroup", ""), resource, "create"))
    return out


def test_install_grants_exactly_what_a_full_run_uses(cluster: ControlPlane, tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "install.yaml").read_text()) if d]
    setup = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Deployment")]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(setup))
    token = cluster.kubectl("create", "token", "docker-socket-operator", "-n", NS).stdout.strip()
    config = json.loads(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = {"token": token}
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(json.dumps(config))

    op = OperatorProcess(kubeconfig, tmp_path, NS)
    op.start()
    kube = Kube(cluster, NS)
    try:
        op.wait_ready()
        client = {"namespace": "ci", "podSelector": {"matchLabels": {"app": "x"}}}
        kube.apply(policy("audited", {"clients": [client], "rules": [{"preset": "logs"}]}))
        kube.wait_ready("audited", 3)
        # Additive drift: take-over patch, apply, Event.
        cluster.kubectl(
            "patch", "daemonset", "dsp-audited", "-n", NS, "--type=merge",
            "-p", '{"spec": {"template": {"spec": {"hostPID": true}}}}',
        )  # fmt: skip
        wait_for(
            lambda: not (kube.get("daemonset", "dsp-audited") or {"spec": {"template": {
                "spec": {"hostPID": True}}}})["spec"]["template"]["spec"].get("hostPID"),
            30, "hostPID removed",
        )  # fmt: skip
        cluster.kubectl("delete", "service", "dsp-audited", "-n", NS)
        wait_for(lambda: kube.get("service", "dsp-audited"), 30, "service recreated")
        # Proxies that cannot run: the status says why from the pods and their Events.
        kube.apply(policy("stuck", {"rules": [{"preset": "logs"}],
                                    "resources": {"requests": {"cpu": "64"}}}))  # fmt: skip
        wait_for(
            lambda: (condition(kube.policy("stuck") or {}, "Degraded") or {}).get("reason")
            == "Unschedulable",
            60, "stuck explained",
        )  # fmt: skip
        cluster.kubectl("delete", "dsp", "stuck")
        cluster.kubectl("delete", "dsp", "audited")
        wait_for(lambda: kube.children("audited").keys() <= {"Pods"}, 30, "children deleted")
        wait_for(
            lambda: ("coordination.k8s.io", "leases", "update") in used(cluster.audit_events()),
            30, "lease renewed",
        )  # fmt: skip
    finally:
        assert op.stop() == 0, op.logs()  # releases the Lease (an update)
    refused = re.search(r"Forbidden|(?<![\d.])403(?![\d])", op.logs())
    assert refused is None, op.logs()

    grants = granted(docs)
    uses = used(cluster.audit_events())
    assert uses <= grants, uses - grants
    unused = grants - uses - NOT_REQUESTS
    assert not unused, f"granted but never used: {sorted(unused)}"
