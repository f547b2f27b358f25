"""Flux's verdicts on the statuses the operator writes, from the real kstatus library
(tools/kstatus-check, sigs.k8s.io/cli-utils/pkg/kstatus) on a real control plane; they must
be what docs/gitops.md promises."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OPERATOR_NS
from tests.support.controlplane import default_bindir
from tests.support.operatorproc import REPO, Kube, OperatorProcess, condition, policy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kube

NS = OPERATOR_NS
CLIENT = {"namespace": "ci", "podSelector": {"matchLabels": {"app": "runner"}}}


@pytest.fixture(scope="module")
def kstatus_check() -> Path:
    """Build (or reuse) the checker; skip, saying why, where Go is missing."""
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        pytest.skip("no Go toolchain to build tools/kstatus-check")
    env = {**os.environ, "DSO_CACHE": str(default_bindir().parent)}
    build = subprocess.run(
        ["make", "--no-print-directory", "-f", "mk/kstatus.mk", "kstatus-check"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if build.returncode != 0:
        pytest.skip(
            f"tools/kstatus-check did not build (no module download?): {build.stderr[-500:]}"
        )
    return default_bindir() / "kstatus-check"


def kstatus(binary: Path, obj: dict[str, Any]) -> str:
    out = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


def _spec(**extra: Any) -> dict[str, Any]:
    return {"clients": [CLIENT], "rules": [{"preset": "read-only"}], **extra}


# (name, spec, the condition that shows the status is written, kstatus verdict, docs row)
CASES: list[tuple[str, dict[str, Any], tuple[str, str], str, str]] = [
    ("ks-ready", _spec(), ("Ready", "True"), "Current", "| `Ready=True` | Current |"),
    (
        "ks-progressing",
        # No node has room for it: the pods stay Pending, the rollout never completes.
        _spec(resources={"requests": {"cpu": "500", "memory": "32Mi"}}),
        ("Reconciling", "True"),
        "InProgress",
        "`Reconciling=True` (rolling out) | InProgress |",
    ),
    (
        "ks-invalid",
        {"clients": [CLIENT], "rules": [{"allow": ["containers.bogus"]}]},
        ("Stalled", "True"),
        "Failed",
        "| `Stalled=True` (invalid policy) | Failed:",
    ),
    (
        "ks-degraded",
        _spec(nodeSelector={"no-such": "node"}),
        ("Degraded", "True"),
        "InProgress",
        "| `Ready=False` for another reason (no node matches",
    ),
]


@pytest.mark.parametrize(
    ("name", "spec", "shows", "verdict", "row"), CASES, ids=[c[0] for c in CASES]
)
def test_kstatus_reads_each_status_as_documented(
    kube: Kube,
    operator: OperatorProcess,
    kstatus_check: Path,
    name: str,
    spec: dict[str, Any],
    shows: tuple[str, str],
    verdict: str,
    row: str,
) -> None:
    assert row in (REPO / "docs" / "gitops.md").read_text()
    kube.apply(policy(name, spec))

    def written() -> dict[str, Any] | None:
        obj = kube.policy(name)
        cond = condition(obj or {}, shows[0])
        current = obj is not None and (
            obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        )
        if current and cond and cond["status"] == shows[1]:
            return obj
        return None

    obj = wait_for(written, 60, f"{name}: {shows[0]}={shows[1]}")
    assert kstatus(kstatus_check, obj) == verdict, obj["status"]
    kube.cp.kubectl("delete", "dsp", name)


def test_a_spec_change_not_yet_observed_is_in_progress(kstatus_check: Path) -> None:
    # The moment between a spec change and the operator's next status write, as kstatus sees it.
    obj = policy("ks-behind", _spec())
    obj["metadata"]["generation"] = 2
    obj["status"] = {"observedGeneration": 1, "conditions": []}
    assert kstatus(kstatus_check, obj) == "InProgress"
