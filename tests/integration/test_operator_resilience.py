"""The operator survives what clusters do to it: an API server restart, and a second replica
(only one reconciles; the standby takes over when the leader goes)."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import OPERATOR_NS
from tests.support.controlplane import ControlPlane
from tests.support.operatorproc import (
    REPO,
    Kube,
    OperatorProcess,
    seed_policies,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kube

NS = OPERATOR_NS


@pytest.fixture
def kube(cluster: ControlPlane) -> Kube:
    return Kube(cluster, NS)


def _repairs_service(kube: Kube, name: str) -> None:
    uid = kube.get("service", f"dsp-{name}")["metadata"]["uid"]  # type: ignore[index]
    kube.cp.kubectl("delete", "service", f"dsp-{name}", "-n", kube.namespace)
    wait_for(
        lambda: (s := kube.get("service", f"dsp-{name}")) and s["metadata"]["uid"] != uid,
        45, f"service dsp-{name} recreated",
    )  # fmt: skip


def test_apiserver_restart_is_survived(cluster: ControlPlane, kube: Kube) -> None:
    op = OperatorProcess(cluster.kubeconfig, cluster.workdir, NS)
    op.start()
    try:
        op.wait_ready()
        kube.apply(seed_policies()["terminals"])
        kube.wait_ready("terminals", 3)

        cluster.restart_apiserver()
        assert op.proc is not None and op.proc.poll() is None, op.logs()

        # Still reconciling after the watches reconnected: drift repair and new policies.
        _repairs_service(kube, "terminals")
        kube.apply(seed_policies()["caddy"])
        kube.wait_ready("caddy", 2, timeout=90)
    finally:
        assert op.stop() == 0, op.logs()


def test_second_replica_stands_by_and_takes_over(cluster: ControlPlane, kube: Kube) -> None:
    first = OperatorProcess(cluster.kubeconfig, cluster.workdir, NS)
    second = OperatorProcess(cluster.kubeconfig, cluster.workdir, NS)
    first.start()
    first.wait_ready()
    wait_for(lambda: "became leader" in first.logs(), 30, "first replica leads")
    second.start()
    try:
        second.wait_ready()  # a standby is ready (and healthy) without leading
        kube.apply(seed_policies()["compose-shop"])
        kube.wait_ready("compose-shop", 2)
        assert "became leader" not in second.logs()
        assert "applying" not in second.logs()

        # The leader leaves cleanly: it hands the Lease back, the standby leads at once.
        assert first.stop(signal.SIGTERM) == 0
        wait_for(lambda: "became leader" in second.logs(), 30, "standby takes over")
        _repairs_service(kube, "compose-shop")
    finally:
        first.stop()
        second.stop()


def test_killed_leader_is_replaced_after_the_lease_expires(
    cluster: ControlPlane, kube: Kube
) -> None:
    first = OperatorProcess(cluster.kubeconfig, cluster.workdir, NS)
    second = OperatorProcess(cluster.kubeconfig, cluster.workdir, NS)
    first.start()
    wait_for(lambda: "became leader" in first.logs(), 30, "first replica leads")
    second.start()
    try:
        second.wait_ready()
        first.stop(signal.SIGKILL)  # no release: the standby must wait for expiry
        wait_for(lambda: "became leader" in second.logs(), 45, "standby takes over")
        kube.apply(seed_policies()["restart-gateway"])
        kube.wait_ready("restart-gateway", 2)
    finally:
        first.stop()
        second.stop()


def test_operator_works_with_only_its_own_rbac(cluster: ControlPlane, tmp_path: Path) -> None:
    """deploy/install.yaml (generated from the chart) applied as shipped, but for the
    Deployment (kwok runs no containers); the operator runs with its ServiceAccount token."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "install.yaml").read_text()) if d]
    setup = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Deployment")]
    deployment = [d for d in docs if d["kind"] == "Deployment"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(setup))
    dry = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(deployment)
    )
    assert "created (server dry run)" in dry.stdout
    ns = "docker-socket-operator"
    token = cluster.kubectl("create", "token", "docker-socket-operator", "-n", ns).stdout.strip()
    config = json.loads(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = {"token": token}
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(json.dumps(config))

    op = OperatorProcess(kubeconfig, tmp_path, ns)
    op.start()
    try:
        op.wait_ready()
        kube = Kube(cluster, ns)
        doc = seed_policies()["n8n-bot"]
        doc["metadata"]["name"] = "rbac-check"
        kube.apply(doc)
        kube.wait_ready("rbac-check", 1)
        _repairs_service(kube, "rbac-check")
        # A refused call shows as "Forbidden" or a 403 status, never inside a timestamp.
        refused = re.search(r"Forbidden|(?<![\d.])403(?![\d])", op.logs())
        assert refused is None, op.logs()
    finally:
        assert op.stop() == 0, op.logs()
