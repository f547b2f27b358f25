"""The Helm chart: lints, renders what each value promises, ships the CRD unchanged, grants
least privilege, and the plain-manifest installs generated from it are not stale.

helm comes from PATH or $DSO_CACHE/bin (`make controlplane`); without it these tests skip.
Server-side validation and a real install are in tests/integration/test_helm_install.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator import __version__

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "docker-socket-operator"
sys.path.insert(0, str(REPO / "hack"))
import gen_install  # noqa: E402


@pytest.fixture(scope="module")
def helm() -> str:
    try:
        return gen_install.find_helm()
    except gen_install.HelmMissing as exc:
        pytest.skip(str(exc))


def template(helm: str, *sets: str, check: bool = True) -> list[dict[str, Any]]:
    args = [helm, "template", "dso", str(CHART), "-n", "dso", "--kube-version", "1.34.0"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    elif proc.returncode != 0:
        raise ValueError(proc.stderr)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = by_kind(docs)["Deployment"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


# -- metadata and CRD --------------------------------------------------------------------------


def test_chart_crd_is_a_verbatim_copy_of_crds() -> None:
    shipped = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    in_chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert shipped, "crds/ is empty"
    assert in_chart == shipped, (
        "charts/docker-socket-operator/crds/ differs from crds/: cp crds/*.yaml into the chart"
    )


def test_versions_follow_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["version"] == __version__
    assert yaml.safe_load((CHART / "values.yaml").read_text())["image"]["tag"] == ""


# -- lint and rendering -------------------------------------------------------------------------


ALL_ON = (
    "monitoring.scraper.enabled=true",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.podMonitor.enabled=true",
    "namespace.create=true",
    "imagePullSecrets[0].name=regcred",
)


@pytest.mark.parametrize("sets", [(), ALL_ON], ids=["defaults", "everything-on"])
def test_helm_lint_strict(helm: str, sets: tuple[str, ...]) -> None:
    args = [helm, "lint", "--strict", str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_defaults_render_the_operator_with_leader_election(helm: str) -> None:
    docs = template(helm)
    kinds = by_kind(docs)
    rbac = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    assert sorted(kinds) == sorted([*rbac, "Deployment", "PodDisruptionBudget"])
    assert len(kinds["Role"]) == len(kinds["RoleBinding"]) == 2  # own namespace, the Lease
    (deploy,) = kinds["Deployment"]
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dso-docker-socket-operator"
    c = operator_container(docs)
    assert c["image"] == f"docker-socket-operator:{__version__}"
    assert c["args"][0] == "operator"
    assert f"--image=docker-socket-operator:{__version__}" in c["args"]
    assert "--lease-name=dso-dockersocket.io-operator" in c["args"]
    assert "--lease-namespace=kube-system" in c["args"]
    assert "--controller-name=dockersocket.io/operator" in c["args"]
    assert "--no-default-controller" not in c["args"]
    assert not any(a.startswith("--monitoring-") for a in c["args"])
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    # Hardened: non-root, no escalation, nothing writable, no capabilities.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    (pdb,) = kinds["PodDisruptionBudget"]
    assert pdb["spec"]["selector"] == deploy["spec"]["selector"]


def test_every_namespaced_object_lands_in_the_release_namespace(helm: str) -> None:
    for doc in template(helm, *ALL_ON):
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
            assert "namespace" not in doc["metadata"]
        elif doc["metadata"]["name"].endswith("-leader"):  # the shared Lease's Role
            assert doc["metadata"]["namespace"] == "kube-system", doc["kind"]
        else:
            assert doc["metadata"]["namespace"] == "dso", doc["kind"]


def test_image_placement_and_resources_values(helm: str) -> None:
    docs = template(
        helm,
        "image.repository=registry.example/dso",
        "image.tag=9.9.9",
        "image.pullPolicy=Always",
        "imagePullSecrets[0].name=regcred",
        "proxy.image.repository=registry.example/proxy",
        "replicaCount=3",
        "nodeSelector.role=infra",
        "tolerations[0].key=infra",
        "tolerations[0].operator=Exists",
        "resources.limits.memory=512Mi",
        "priorityClassName=system-cluster-critical",
    )
    (deploy,) = by_kind(docs)["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    c = operator_container(docs)
    assert deploy["spec"]["replicas"] == 3
    assert c["image"] == "registry.example/dso:9.9.9"
    assert c["imagePullPolicy"] == "Always"
    assert "--image=registry.example/proxy:9.9.9" in c["args"]  # proxy follows the tag
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"role": "infra"}
    assert pod["tolerations"] == [{"key": "infra", "operator": "Exists"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert c["resources"]["limits"]["memory"] == "512Mi"


def test_scraper_becomes_the_operators_monitoring_peer_flags(helm: str) -> None:
    c = operator_container(template(helm, "monitoring.scraper.enabled=true"))
    assert "--monitoring-namespace-selector=kubernetes.io/metadata.name=monitoring" in c["args"]
    assert "--monitoring-pod-selector=app.kubernetes.io/name=prometheus" in c["args"]
    # The flags parse into the NetworkPolicy peer the operator renders.
    import argparse

    from docker_socket_operator.controller.commands import add_commands, render_options

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args([a for a in c["args"] if not a.startswith("--lease")])
    assert render_options(args).monitoring_peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }


def test_every_rendered_operator_flag_is_one_the_operator_accepts(helm: str) -> None:
    import argparse

    from docker_socket_operator.controller.commands import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    for sets in [
        (),
        ALL_ON,
        ("leaderElection.enabled=false", "replicaCount=1", "logging.verbose=true"),
    ]:
        args = parser.parse_args(operator_container(template(helm, *sets))["args"])
        assert args.command == "operator"


def test_monitors_are_off_by_default_and_select_the_proxies(helm: str) -> None:
    assert not {"ServiceMonitor", "PodMonitor"} & set(by_kind(template(helm)))
    kinds = by_kind(template(helm, *ALL_ON))
    (pm,) = kinds["PodMonitor"]
    proxy_labels = {
        "app.kubernetes.io/name": "docker-socket-proxy",
        "app.kubernetes.io/managed-by": "docker-socket-operator",
    }
    assert pm["spec"]["selector"]["matchLabels"] == proxy_labels
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    (sm,) = kinds["ServiceMonitor"]
    (svc,) = [s for s in kinds["Service"] if s["metadata"]["name"].endswith("-proxy-metrics")]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == proxy_labels
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()


def test_proxy_labels_the_monitors_select_are_the_ones_the_operator_renders() -> None:
    from docker_socket_operator.controller.render.common import RenderOptions, common_labels

    labels = common_labels("p", RenderOptions())
    assert labels["app.kubernetes.io/name"] == "docker-socket-proxy"
    assert labels["app.kubernetes.io/managed-by"] == "docker-socket-operator"


def test_namespace_create_labels_pod_security_privileged(helm: str) -> None:
    (ns,) = by_kind(template(helm, "namespace.create=true"))["Namespace"]
    assert ns["metadata"]["name"] == "dso"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_unelected_replicas_and_unknown_values_are_refused(helm: str) -> None:
    with pytest.raises(ValueError, match="needs replicaCount=1"):
        template(helm, "leaderElection.enabled=false", check=False)
    no_lease = operator_container(template(helm, "leaderElection.enabled=false", "replicaCount=1"))
    assert "--no-leader-election" in no_lease["args"]
    with pytest.raises(ValueError, match="replicaCont"):
        template(helm, "replicaCont=3", check=False)  # a typo is an error, not ignored
    with pytest.raises(ValueError, match="format"):
        template(helm, "logging.format=xml", check=False)


# -- RBAC -----------------------------------------------------------------------------------------

CLUSTER_RULES = [
    {"apiGroups": ["dockersocket.io"], "resources": ["dockersocketpolicies"],
     "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["dockersocket.io"], "resources": ["dockersocketpolicies/status"],
     "verbs": ["patch"]},
    {"apiGroups": ["dockersocket.io"], "resources": ["dockersocketpolicies/finalizers"],
     "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]  # fmt: skip


def test_rbac_is_least_privilege(helm: str) -> None:
    kinds = by_kind(template(helm))
    (cr,) = kinds["ClusterRole"]
    role, leader = kinds["Role"]
    # Cluster-wide: only the policies (no create/delete: users own them), listing nodes,
    # events. Everything it writes otherwise is in its own namespace, and the Lease.
    assert cr["rules"] == CLUSTER_RULES
    assert leader["metadata"]["namespace"] == "kube-system"
    assert leader["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["dso-dockersocket.io-operator"], "verbs": ["get", "update"]},
    ]  # fmt: skip
    for rule in cr["rules"] + role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "secrets" not in rule["resources"], rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    writable = {
        res
        for rule in role["rules"]
        if {"create", "update", "patch", "delete"} & set(rule["verbs"])
        for res in rule["resources"]
    }
    assert writable == {"configmaps", "services", "daemonsets", "networkpolicies"}
    assert role["metadata"]["namespace"] == "dso"
    for binding in kinds["ClusterRoleBinding"] + kinds["RoleBinding"]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "dso-docker-socket-operator", "namespace": "dso"}
        ]


# -- values documentation and schema ---------------------------------------------------------------


def _leaves(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node and prefix.count(".") < 3:
        out: set[str] = set()
        for key, value in node.items():
            out |= _leaves(value, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix}


def test_every_value_has_a_comment_and_a_schema_entry() -> None:
    text = (CHART / "values.yaml").read_text().splitlines()
    values = yaml.safe_load("\n".join(text))
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Every value key has a comment line right above it, or sits inside a commented
    # mapping (resources, securityContext: their children are Kubernetes' own fields).
    ancestors: list[tuple[int, bool]] = []  # (indent, commented) of enclosing mapping keys
    for i, line in enumerate(text):
        m = re.match(r"^(\s*)([A-Za-z][\w]*):(\s|$)", line)
        if not m:
            continue
        indent = len(m.group(1))
        commented = i > 0 and text[i - 1].strip().startswith("#")
        ancestors = [(n, c) for n, c in ancestors if n < indent]
        if line.rstrip().endswith(":"):
            ancestors.append((indent, commented))
            continue
        assert commented or any(c for _, c in ancestors), (
            f"values.yaml line {i + 1} ({m.group(2)}) has no comment"
        )

    def in_schema(path: str) -> bool:
        node = schema
        for part in path.split("."):
            props = node.get("properties")
            if props is None:
                return bool(node.get("type") == "object")  # free-form map (labels, selectors)
            if part not in props:
                return False
            node = props[part]
        return True

    for leaf in _leaves(values):
        assert in_schema(leaf), f"{leaf} is not in values.schema.json"


# -- generated plain manifests ---------------------------------------------------------------------


def test_install_yaml_and_kustomize_base_are_not_stale(helm: str) -> None:
    outputs = gen_install.render_outputs(helm)
    stale = [str(p.relative_to(REPO)) for p in gen_install.stale_files(outputs)]
    assert not stale, f"stale generated files {stale}: run `make install-manifests`"


def test_install_yaml_is_complete_and_free_of_helm_bookkeeping() -> None:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "install.yaml").read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[:2] == ["CustomResourceDefinition", "Namespace"]
    assert {"ServiceAccount", "ClusterRole", "Role", "Deployment", "PodDisruptionBudget"} <= set(
        kinds
    )
    text = (REPO / "deploy" / "install.yaml").read_text()
    assert "helm.sh/chart" not in text and "managed-by: Helm" not in text
    crd = docs[0]
    shipped = yaml.safe_load(
        (REPO / "crds" / "dockersocket.io_dockersocketpolicies.yaml").read_text()
    )
    assert crd["spec"] == shipped["spec"]
    (ns,) = [d for d in docs if d["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_kustomize_base_builds_the_same_objects_as_install_yaml() -> None:
    import shutil

    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed (kubectl kustomize)")
    built = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy" / "kustomize")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    install = [d for d in yaml.safe_load_all((REPO / "deploy" / "install.yaml").read_text()) if d]
    assert sorted((d for d in yaml.safe_load_all(built) if d), key=key) == sorted(install, key=key)


def test_kubeconform_strict_when_it_can_run_offline() -> None:
    """kubeconform fetches its schemas from GitHub at run time; the integration test feeds it
    schemas exported from the real API server instead (test_helm_install.py)."""
    from gen_install_schemas import find_kubeconform

    binary = find_kubeconform()
    if binary is None:
        pytest.skip("kubeconform not installed")
    proc = subprocess.run(
        [binary, "-strict", "-summary", "-skip", "CustomResourceDefinition",
         str(REPO / "deploy" / "install.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if "failed downloading schema" in proc.stdout + proc.stderr:
        print("\n[skip] kubeconform cannot download its schemas (offline)")
        pytest.skip("kubeconform cannot download schemas offline; see test_helm_install.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_second_install_with_its_own_controller_name(helm: str) -> None:
    docs = template(helm, "controllerName=example.com/ci", "defaultController=false")
    c = operator_container(docs)
    assert "--controller-name=example.com/ci" in c["args"]
    assert "--no-default-controller" in c["args"]
    assert "--lease-name=dso-example.com-ci" in c["args"]
    with pytest.raises(ValueError, match="controllerName"):
        template(helm, "controllerName=no-slash", check=False)
