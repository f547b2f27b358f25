"""`render` and `crd` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from docker_socket_operator.api.crd import CRD_FILENAME, crd_yaml
from docker_socket_operator.controller.commands import main
from tests.support.operatorproc import seed_policies


def test_render_prints_the_objects_the_operator_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump_all([seed_policies()["caddy"], seed_policies()["terminals"]]))
    code = main(["render", "-f", str(path), "--namespace", "infra", "--image", "img:1"])
    assert code == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs[:4]] == [
        ("ConfigMap", "dsp-caddy"),
        ("DaemonSet", "dsp-caddy"),
        ("Service", "dsp-caddy"),
        ("NetworkPolicy", "dsp-caddy"),
    ]
    assert len(docs) == 8
    assert all(d["metadata"]["namespace"] == "infra" for d in docs)
    # No uid outside the cluster: no ownerReference that the API server would refuse.
    assert all("ownerReferences" not in d["metadata"] for d in docs)
    assert docs[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"
    # The policy file is a readable block and a valid proxy policy document.
    inner = yaml.safe_load(docs[0]["data"]["policy.yaml"])
    assert inner["kind"] == "DockerSocketPolicy"


def test_render_refuses_an_invalid_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("docker_socket_operator.policy.compile")
    doc = seed_policies()["caddy"]
    doc["spec"]["rules"] = [{"allow": ["containers.bogus"]}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["render", "-f", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "containers.bogus" in captured.err


def test_render_monitoring_peer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(seed_policies()["caddy"]))
    args = ["render", "-f", str(path), "--monitoring-namespace-selector", "team=obs"]
    assert main([*args, "--monitoring-pod-selector", "app=prometheus"]) == 0
    netpol = list(yaml.safe_load_all(capsys.readouterr().out))[3]
    assert netpol["spec"]["ingress"][1]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"team": "obs"}},
            "podSelector": {"matchLabels": {"app": "prometheus"}},
        }
    ]


def test_crd_command_writes_the_committed_file(tmp_path: Path) -> None:
    assert main(["crd", "--output", str(tmp_path)]) == 0
    assert (tmp_path / CRD_FILENAME).read_text() == crd_yaml()
