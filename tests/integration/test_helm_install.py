"""The chart against a real control plane: the rendered objects pass the API server's own
validation and kubeconform -strict (schemas exported from that server), `helm install` gives an
operator whose ServiceAccount can do its whole job (a policy becomes Ready), GitOps tools that
re-apply the policy or its rendered children see no diff and cause no fight, `helm upgrade`
changes what it should, and `helm uninstall` leaves the CRD and the policies.

kwok fakes pods (no container runs), so the operator the chart deploys never really starts;
the test runs the operator process itself with the chart's ServiceAccount token instead.
Tests run in file order and share one release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import COMPONENTS, ControlPlane, default_bindir
from tests.support.operatorproc import NODE_LABELS, REPO, Kube, OperatorProcess
from tests.support.waiting import holds_for, wait_for

sys.path.insert(0, str(REPO / "hack"))
import gen_install
import gen_install_schemas

pytestmark = pytest.mark.kube

NS = "dso-helm"
RELEASE = "dso"
FULLNAME = "dso-docker-socket-operator"
CHART = REPO / "charts" / "docker-socket-operator"
POLICY_FILE = REPO / "examples" / "policies" / "restart-one.yaml"  # no nodeSelector: 3 nodes
POLICY = "restart-one"
PROXY_IMAGE = "docker-socket-operator:test"
RELEASE_OBJECTS = [
    ("deployment", FULLNAME, True), ("serviceaccount", FULLNAME, True),
    ("role", FULLNAME, True), ("rolebinding", FULLNAME, True),
    ("poddisruptionbudget", FULLNAME, True),
    ("clusterrole", FULLNAME, False), ("clusterrolebinding", FULLNAME, False),
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    bindir = default_bindir()
    missing = [c for c in COMPONENTS if not (bindir / c).exists()]
    if missing:
        pytest.skip(f"control plane binaries missing in {bindir}: {missing} (make controlplane)")
    try:
        gen_install.find_helm()
    except gen_install.HelmMissing as exc:
        pytest.skip(str(exc))
    cp = ControlPlane(bindir, tmp_path_factory.mktemp("cp"), nodes=3, node_labels=NODE_LABELS)
    cp.start()
    try:
        cp.kubectl("create", "namespace", NS)
        cp.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=privileged")
        yield cp
    finally:
        cp.stop()


def helm(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "HELM_CACHE_HOME": str(cp.workdir / "helm"),
    }
    proc = subprocess.run(
        [gen_install.find_helm(), *args], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def get(cp: ControlPlane, kind: str, name: str, namespaced: bool = True) -> dict[str, Any] | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", NS] if namespaced else [])
    proc = cp.kubectl(*args, check=False)
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


@pytest.fixture(scope="module")
def release(cluster: ControlPlane) -> subprocess.CompletedProcess[str]:
    return helm(cluster, "install", RELEASE, str(CHART), "-n", NS, "--wait", "--timeout", "2m")


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane,
    release: subprocess.CompletedProcess[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator with nothing but the token of the ServiceAccount the chart created."""
    token = cluster.kubectl("create", "token", FULLNAME, "-n", NS).stdout.strip()
    config = json.loads(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = {"token": token}
    workdir = tmp_path_factory.mktemp("operator")
    kubeconfig = workdir / "sa.kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    # The chart's defaults: Lease dso-<controllerName> in kube-system, the one its Role names.
    with OperatorProcess(kubeconfig, workdir, NS, image=PROXY_IMAGE).running() as op:
        yield op


# -- validation ----------------------------------------------------------------------------------

EVERYTHING = ("--kube-version", "1.34.0", "--set", "imagePullSecrets[0].name=regcred", "--set", "monitoring.scraper.enabled=true",
              "--set", "nodeSelector.kubernetes\\.io/os=linux")  # fmt: skip


def test_install_prints_the_next_steps(release: subprocess.CompletedProcess[str]) -> None:
    notes = release.stdout
    assert f"kubectl label namespace {NS}" in notes
    assert "pod-security.kubernetes.io/enforce=privileged" in notes
    assert "Apply a policy" in notes and "kubectl apply --server-side -f" in notes


def test_rendered_chart_passes_server_side_dry_run(cluster: ControlPlane, release: Any) -> None:
    rendered = helm(cluster, "template", "other", str(CHART), "-n", NS, *EVERYTHING).stdout
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert dry.stdout.count("(server dry run)") == len(
        [d for d in yaml.safe_load_all(rendered) if d]
    )


def test_kubeconform_strict_with_the_servers_schemas(
    cluster: ControlPlane, release: Any, tmp_path: Path
) -> None:
    binary = gen_install_schemas.find_kubeconform()
    if binary is None:
        pytest.skip("kubeconform not installed")

    def fetch(url: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(cluster.kubectl("get", "--raw", url).stdout)
        return result

    schemas = tmp_path / "schemas"
    names = {p.name for p in gen_install_schemas.export_schemas(fetch, schemas)}
    assert {"deployment-apps-v1.json", "dockersocketpolicy-dockersocket-v1alpha1.json"} <= names
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "chart.yaml").write_text(
        helm(cluster, "template", "x", str(CHART), "-n", NS, *EVERYTHING, "--include-crds").stdout
    )
    location = f"{schemas}/{gen_install_schemas.SCHEMA_LOCATION}"

    def kubeconform(*paths: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "-strict", "-summary", "-schema-location", location, *map(str, paths)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    good = kubeconform(
        manifests / "chart.yaml", REPO / "deploy" / "install.yaml", REPO / "examples" / "policies"
    )
    print(good.stdout)
    assert good.returncode == 0 and "Invalid: 0, Errors: 0" in good.stdout, good.stdout
    assert "Skipped: 0" in good.stdout, good.stdout
    # The schemas are real: a typo in a policy or the Deployment is caught.
    bad = tmp_path / "bad.yaml"
    policy = yaml.safe_load(POLICY_FILE.read_text())
    policy["spec"]["rulez"] = []
    bad.write_text(yaml.safe_dump(policy))
    rejected = kubeconform(bad)
    assert rejected.returncode != 0 and "rulez" in rejected.stdout, rejected.stdout


# -- install: the chart's RBAC is enough ----------------------------------------------------------


def test_install_created_the_crd_and_the_operator(cluster: ControlPlane, release: Any) -> None:
    crd = get(cluster, "crd", "dockersocketpolicies.dockersocket.io", namespaced=False)
    assert crd is not None
    assert any(
        c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"]
    )
    deploy = get(cluster, "deployment", FULLNAME)
    assert deploy is not None and deploy["spec"]["replicas"] == 2
    assert deploy["status"].get("readyReplicas") == 2  # kwok's fake pods, but --wait held


def test_policy_becomes_ready_with_the_charts_service_account(
    cluster: ControlPlane, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "--server-side", "--field-manager=tests", "-f", str(POLICY_FILE))
    obj = Kube(cluster, NS).wait_ready(POLICY, 3, timeout=90)
    assert obj["status"]["endpoint"] == f"tcp://dsp-{POLICY}.{NS}.svc:2375"
    logs = operator.logs()
    assert "Forbidden" not in logs and " 403" not in logs, logs


# -- GitOps: re-applying what Git says changes nothing ---------------------------------------------


def _diff(cluster: ControlPlane, manifests: str, manager: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "diff", "--server-side", f"--field-manager={manager}", "-f", "-",
        input=manifests, check=False,
    )  # fmt: skip


def _snapshot(cluster: ControlPlane) -> dict[str, dict[str, Any]]:
    """The policy and its children, keyed kind/name, as the API server holds them."""
    items = cluster.kubectl_json(
        "get", "configmaps,daemonsets,services,networkpolicies", "-n", NS,
        "-l", f"dockersocket.io/policy={POLICY}", "--show-managed-fields",
    )["items"]  # fmt: skip
    items.append(cluster.kubectl_json("get", "dockersocketpolicy", POLICY, "--show-managed-fields"))
    return {f"{i['kind']}/{i['metadata']['name']}": i for i in items}


def _versions(snapshot: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: o["metadata"]["resourceVersion"] for k, o in snapshot.items()}


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but the bookkeeping a co-owning field manager legitimately changes."""
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "resourceVersion")
    }
    return {**obj, "metadata": meta}


def test_gitops_reapply_of_policy_and_children_is_a_no_op(
    cluster: ControlPlane, operator: OperatorProcess
) -> None:
    """Argo CD / Flux re-apply the policy, or (an app of apps) the operator's rendered children,
    with their own field manager: no diff, no conflict, and the operator does not write back."""
    Kube(cluster, NS).wait_ready(POLICY, 3, timeout=90)
    rendered = subprocess.run(
        [sys.executable, "-m", "docker_socket_operator.controller.commands", "render",
         "-f", str(POLICY_FILE), "--namespace", NS, "--image", PROXY_IMAGE],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    assert {d["kind"] for d in yaml.safe_load_all(rendered) if d} == {
        "ConfigMap",
        "DaemonSet",
        "Service",
        "NetworkPolicy",
    }
    policy = POLICY_FILE.read_text()
    for manifests in (policy, rendered):
        diff = _diff(cluster, manifests, "argocd")
        assert diff.returncode == 0, diff.stdout + diff.stderr  # 1 = differences

    before = _snapshot(cluster)
    for manifests in (policy, rendered):
        # No --force-conflicts: a field another manager owns with another value would fail here.
        cluster.kubectl(
            "apply", "--server-side", "--field-manager=argocd", "-f", "-", input=manifests
        )
    applied = _versions(_snapshot(cluster))
    # The window in which the operator's child-event handlers fire on the apply above:
    holds_for(
        lambda: _versions(_snapshot(cluster)) == applied,
        8,
        "the operator does not rewrite objects GitOps had just applied",
    )
    after = _snapshot(cluster)
    for name, obj in after.items():
        assert _content(obj) == _content(before[name]), f"{name} changed"
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert "argocd" in managers, name  # argocd co-owns, nobody lost anything
    for manifests in (policy, rendered):
        assert _diff(cluster, manifests, "argocd").returncode == 0


# -- upgrade and uninstall ---------------------------------------------------------------------------


def test_helm_upgrade_applies_changed_values(cluster: ControlPlane, release: Any) -> None:
    helm(
        cluster, "upgrade", RELEASE, str(CHART), "-n", NS, "--reuse-values",
        "--set", "replicaCount=3", "--set", "monitoring.scraper.enabled=true",
        "--set", "proxy.image.repository=registry.example/dso-proxy",
    )  # fmt: skip
    deploy = get(cluster, "deployment", FULLNAME)
    assert deploy is not None and deploy["spec"]["replicas"] == 3
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--monitoring-namespace-selector=kubernetes.io/metadata.name=monitoring" in args
    assert "--image=registry.example/dso-proxy:0.1.0" in args
    history = json.loads(helm(cluster, "history", RELEASE, "-n", NS, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]
    assert history[-1]["status"] == "deployed"


def test_helm_uninstall_removes_the_release_but_keeps_crd_and_policies(
    cluster: ControlPlane, operator: OperatorProcess
) -> None:
    operator.stop()  # its RBAC is about to go
    helm(cluster, "uninstall", RELEASE, "-n", NS, "--wait")
    for kind, name, namespaced in RELEASE_OBJECTS:
        assert get(cluster, kind, name, namespaced) is None, f"{kind}/{name} survived uninstall"
    # Helm never deletes crds/ (that would delete every policy): CRD and policies stay, and so
    # do their proxies until the policies are deleted.
    assert get(cluster, "crd", "dockersocketpolicies.dockersocket.io", namespaced=False)
    assert get(cluster, "dockersocketpolicy", POLICY, namespaced=False)
    assert get(cluster, "daemonset", f"dsp-{POLICY}")


def test_install_yaml_applies_server_side(cluster: ControlPlane) -> None:
    """The generated plain install (after the Helm release is gone; the CRD already exists)."""
    out = cluster.kubectl("apply", "--server-side", "-f", str(REPO / "deploy" / "install.yaml"))
    assert "deployment.apps/docker-socket-operator serverside-applied" in out.stdout
    wait_for(
        lambda: (get(cluster, "namespace", "docker-socket-operator", namespaced=False) or {})
        .get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce")
        == "privileged",
        20, "namespace labelled",
    )  # fmt: skip
