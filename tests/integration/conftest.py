"""Fixtures shared by the Kubernetes suites: one real control plane per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controlplane import COMPONENTS, ControlPlane, default_bindir
from tests.support.operatorproc import NODE_LABELS, Kube, OperatorProcess, install_crds

OPERATOR_NS = "dso-system"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, controller-manager, scheduler and kwok nodes, CRDs installed and
    the operator's namespace created; skipped, saying why, when the binaries are not built."""
    bindir = default_bindir()
    missing = [c for c in COMPONENTS if not (bindir / c).exists()]
    if missing:
        pytest.skip(f"control plane binaries missing in {bindir}: {missing} (make controlplane)")
    cp = ControlPlane(bindir, tmp_path_factory.mktemp("cp"), nodes=3, node_labels=NODE_LABELS)
    cp.start()
    try:
        install_crds(cp)
        cp.kubectl("create", "namespace", OPERATOR_NS)
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def kube(cluster: ControlPlane) -> Kube:
    return Kube(cluster, OPERATOR_NS)


@pytest.fixture(scope="module")
def operator(cluster: ControlPlane) -> Iterator[OperatorProcess]:
    """The operator as a local process against this module's control plane (a suite that
    installs it differently, e.g. by Helm, defines its own)."""
    with OperatorProcess(cluster.kubeconfig, cluster.workdir, OPERATOR_NS).running() as op:
        yield op
