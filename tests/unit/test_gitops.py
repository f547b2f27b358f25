"""What Argo CD and Flux conclude from the statuses the operator writes.

The statuses come from controller/status.py (the functions the operator uses), so a change
there that confuses a GitOps tool fails here. Argo CD's verdict: deploy/gitops/argocd/health.lua
run in a real Lua (lupa). Flux (and `kstatus` users): the real kstatus library
(tools/kstatus-check, built by `make -f mk/kstatus.mk kstatus-check`; skipped without it).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator.controller.nodeproblems import NodeProblem
from docker_socket_operator.controller.status import Outcome, compute_status

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "deploy" / "gitops"
HEALTH_LUA = GITOPS / "argocd" / "health.lua"
NOW = "2025-01-01T00:00:00Z"
ENDPOINT = "tcp://dsp-p.docker-socket-operator.svc:2375"


def daemonset(desired: int, ready: int, updated: int, *, observed: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"generation": 4},
        "status": {
            "observedGeneration": 4 if observed else 3,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "numberAvailable": ready,
        },
    }


def policy_with(outcome: Outcome, ds: dict[str, Any] | None, generation: int = 2) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "apiVersion": "dockersocket.io/v1alpha1",
        "kind": "DockerSocketPolicy",
        "metadata": {"name": "p", "generation": generation},
        "spec": {},
    }
    policy["status"] = compute_status(policy, outcome, ds, now=NOW)
    return policy


OK = Outcome(endpoint=ENDPOINT)

# name -> (policy as the operator leaves it, Argo CD health, kstatus status)
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "ready": (policy_with(OK, daemonset(2, 2, 2)), "Healthy", "Current"),
    "rolling-out": (policy_with(OK, daemonset(2, 1, 1)), "Progressing", "InProgress"),
    "proxies-not-ready": (policy_with(OK, daemonset(2, 1, 2)), "Progressing", "InProgress"),
    "daemonset-not-observed": (
        policy_with(OK, daemonset(2, 2, 2, observed=False)), "Progressing", "InProgress"
    ),
    "no-daemonset-yet": (policy_with(OK, None), "Progressing", "InProgress"),
    "invalid-policy": (
        policy_with(Outcome("InvalidPolicy", "rules[0]: 'containers.bogus' names no operation"), None),
        "Degraded", "Failed",
    ),
}  # fmt: skip


def _behind() -> dict[str, Any]:
    """Ready for generation 2, but the user has just applied generation 3."""
    p = copy.deepcopy(CASES["ready"][0])
    p["metadata"]["generation"] = 3
    return p


CASES["generation-behind"] = (_behind(), "Progressing", "InProgress")


def _socket_missing() -> dict[str, Any]:
    """A node without the socket: Degraded for people, but the kubelet keeps retrying, so
    kstatus waits (InProgress) instead of failing for good."""
    problem = NodeProblem(
        "node-a", "SocketMissing", "hostPath type check failed: /x is not a socket file"
    )
    p = policy_with(OK, daemonset(2, 1, 2))
    p["status"] = compute_status(p, OK, daemonset(2, 1, 2), now=NOW, problems=[problem])
    return p


CASES["socket-missing"] = (_socket_missing(), "Degraded", "InProgress")
# kstatus cannot know a status is coming: before the first write it says Current (the
# Flux Kustomization's healthCheckExprs, which want Ready=True, are what hold it back).
CASES["no-status-yet"] = (
    {"metadata": {"name": "p", "generation": 1}, "spec": {}},
    "Progressing",
    "Current",
)


# -- Argo CD -------------------------------------------------------------------------------------


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    lupa = pytest.importorskip("lupa", reason="lupa not installed (pip install -e '.[dev]')")
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    # Argo CD hands the script the object as JSON-decoded Lua tables.
    lua.globals().obj = lua.table_from(json.loads(json.dumps(obj)), recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return {str(k): str(v) for k, v in result.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_argocd_health_lua(case: str) -> None:
    obj, want, _ = CASES[case]
    health = argocd_health(obj)
    assert health["status"] == want, health
    assert health["message"], health


def test_argocd_health_messages_say_why() -> None:
    assert "2/2 nodes ready" in argocd_health(CASES["ready"][0])["message"]
    invalid = argocd_health(CASES["invalid-policy"][0])["message"]
    assert invalid.startswith("InvalidPolicy: rules[0]")
    assert "generation 3" in argocd_health(CASES["generation-behind"][0])["message"]


@pytest.mark.parametrize(
    "outcome, ds, reason",
    [
        (Outcome("ApplyFailed", "forbidden"), daemonset(2, 2, 2), "ApplyFailed"),
        (OK, daemonset(0, 0, 0), "NoMatchingNodes"),
    ],
)
def test_argocd_reports_degraded_for_apply_failures_and_no_nodes(
    outcome: Outcome, ds: dict[str, Any], reason: str
) -> None:
    health = argocd_health(policy_with(outcome, ds))
    assert health["status"] == "Degraded"
    assert health["message"].startswith(reason)


def test_argocd_cm_snippet_embeds_health_lua_verbatim() -> None:
    cm = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-health.yaml").read_text())
    script = cm["data"]["resource.customizations.health.dockersocket.io_DockerSocketPolicy"]
    assert script == HEALTH_LUA.read_text()
    assert cm["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/part-of": "argocd"},
    }


# -- kstatus (Flux health checks, kpt, cli-utils) ------------------------------------------------


def kstatus(obj: dict[str, Any]) -> str:
    """sigs.k8s.io/cli-utils/pkg/kstatus' verdict, from the library itself."""
    binary = Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "bin"
    checker = binary / "kstatus-check"
    if not checker.exists():
        pytest.skip(f"{checker} not built (make -f mk/kstatus.mk kstatus-check)")
    body = {"apiVersion": "dockersocket.io/v1alpha1", "kind": "DockerSocketPolicy", **obj}
    out = subprocess.run(
        [str(checker)], input=json.dumps(body), capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_kstatus_verdicts(case: str) -> None:
    obj, _, want = CASES[case]
    assert kstatus(obj) == want


def test_every_condition_carries_the_generation_kstatus_compares() -> None:
    obj = CASES["ready"][0]
    for cond in obj["status"]["conditions"]:
        assert cond["observedGeneration"] == obj["metadata"]["generation"]
    assert {c["type"] for c in obj["status"]["conditions"]} >= {"Ready", "Reconciling", "Stalled"}


def test_kstatus_is_not_current_after_a_failed_apply() -> None:
    assert kstatus(policy_with(Outcome("ApplyFailed", "forbidden"), None)) == "InProgress"


def test_kstatus_is_not_current_without_a_matching_node() -> None:
    # Ready=False is InProgress for kstatus (its Ready-condition rule), never Current.
    no_nodes = policy_with(Outcome(endpoint=ENDPOINT, matching_nodes=0), daemonset(0, 0, 0))
    assert kstatus(no_nodes) == "InProgress"


# -- manifests -----------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_argocd_applications_point_at_real_paths_and_apply_server_side() -> None:
    for path in (GITOPS / "argocd").glob("*-application.yaml"):
        (app,) = _docs(path)
        assert app["kind"] == "Application"
        assert (REPO / app["spec"]["source"]["path"]).is_dir(), path
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"], path
    (op,) = _docs(GITOPS / "argocd" / "operator-application.yaml")
    labels = op["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_flux_helmrelease_manages_crds_on_upgrade() -> None:
    (hr,) = _docs(GITOPS / "flux" / "operator" / "helmrelease.yaml")
    assert hr["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert hr["spec"]["install"]["crds"] == "Create"
    assert hr["spec"]["upgrade"]["crds"] == "CreateReplace"
    assert (REPO / hr["spec"]["chart"]["spec"]["chart"]).is_dir()
    (ns,) = _docs(GITOPS / "flux" / "operator" / "namespace.yaml")
    assert ns["metadata"]["name"] == hr["spec"]["targetNamespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_flux_policies_kustomization_health_checks_every_policy_it_applies() -> None:
    ks = {d["metadata"]["name"]: d for d in _docs(GITOPS / "flux" / "kustomizations.yaml")}
    policies = ks["docker-socket-policies"]["spec"]
    assert policies["dependsOn"] == [{"name": "docker-socket-operator"}]
    applied = {
        d["metadata"]["name"] for p in (REPO / policies["path"]).glob("*.yaml") for d in _docs(p)
    }
    checked = {h["name"] for h in policies["healthChecks"] if h["kind"] == "DockerSocketPolicy"}
    assert checked == applied
    (expr,) = policies["healthCheckExprs"]
    assert (expr["apiVersion"], expr["kind"]) == ("dockersocket.io/v1alpha1", "DockerSocketPolicy")
    assert "'Ready'" in expr["current"] and "'Stalled'" in expr["failed"]


def test_gitops_helm_values_are_valid_chart_values() -> None:
    sys.path.insert(0, str(REPO / "hack"))
    import gen_install

    try:
        helm = gen_install.find_helm()
    except gen_install.HelmMissing as exc:
        pytest.skip(str(exc))
    (app,) = _docs(GITOPS / "argocd" / "operator-application.yaml")
    (hr,) = _docs(GITOPS / "flux" / "operator" / "helmrelease.yaml")
    for values in (app["spec"]["source"]["helm"]["valuesObject"], hr["spec"]["values"]):
        proc = subprocess.run(
            [helm, "template", "x", str(REPO / "charts" / "docker-socket-operator"),
             "--kube-version", "1.34.0", "-f", "-"],
            input=json.dumps(values), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
