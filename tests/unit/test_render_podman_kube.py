"""`render --format podman-kube`: the Pod and ConfigMap `podman kube play` runs, as a user
prints them. The golden file is the exact text for an example policy; regenerate it after an
intended change with `DSO_UPDATE_GOLDEN=1 pytest tests/unit/test_render_podman_kube.py`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_socket_operator.controller.commands import main
from docker_socket_operator.controller.render.podman_kube import (
    PodmanKubeOptions,
    render_podman_kube,
)
from docker_socket_operator.policy.types import PolicyError
from tests.support.operatorproc import policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "policies" / "restart-one.yaml"
GOLDEN = Path(__file__).parent / "golden" / "podman-kube-restart-one.yaml"
IMAGE = "docker-socket-operator:golden"


def render_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", "--format", "podman-kube", "--image", IMAGE, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_output_matches_the_golden_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = render_cli(capsys, "-f", str(EXAMPLE))
    assert code == 0, err
    if os.environ.get("DSO_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(out)
    assert out == GOLDEN.read_text()


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    assert [d["kind"] for d in docs] == ["ConfigMap", "Pod"]
    return docs[1]


def test_same_policy_file_as_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-f", str(EXAMPLE)]) == 0
    operator_cm = next(
        d for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "ConfigMap"
    )
    code, out, _ = render_cli(capsys, "-f", str(EXAMPLE))
    assert code == 0
    podman_cm = next(yaml.safe_load_all(out))
    assert podman_cm["data"] == operator_cm["data"]
    # No namespace or ownerReferences: there is no API server on a Podman host.
    assert set(podman_cm["metadata"]) == {"name", "labels"}


def test_rootful_by_default_published_on_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render_cli(capsys, "-f", str(EXAMPLE))
    assert code == 0
    pod = _pod(list(yaml.safe_load_all(out)))
    spec = pod["spec"]
    assert spec["volumes"][0]["hostPath"] == {"path": "/run/podman/podman.sock", "type": "Socket"}
    (ctr,) = spec["containers"]
    assert ctr["ports"] == [
        {
            "name": "docker",
            "containerPort": 2375,
            "hostIP": "127.0.0.1",
            "hostPort": 2375,
            "protocol": "TCP",
        }
    ]
    assert ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    # The proxy reads the mounted socket and the mounted policy file.
    args = ctr["args"]
    mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
    assert args[args.index("--socket") + 1] == mounts["podman-socket"]
    assert args[args.index("--policy") + 1].startswith(mounts["policy"] + "/")


def test_rootless_socket_and_chosen_publish_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    code, out, _ = render_cli(
        capsys, "-f", str(EXAMPLE), "--podman-socket", "rootless", "--publish", "127.0.0.2:23750"
    )
    assert code == 0
    pod = _pod(list(yaml.safe_load_all(out)))
    assert pod["spec"]["volumes"][0]["hostPath"]["path"] == "/run/user/1000/podman/podman.sock"
    port = pod["spec"]["containers"][0]["ports"][0]
    assert (port["hostIP"], port["hostPort"]) == ("127.0.0.2", 23750)


def test_explicit_socket_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render_cli(capsys, "-f", str(EXAMPLE), "--podman-socket", "/srv/p.sock")
    assert code == 0
    assert _pod(list(yaml.safe_load_all(out)))["spec"]["volumes"][0]["hostPath"]["path"] == (
        "/srv/p.sock"
    )


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--podman-socket", "rootless"], "XDG_RUNTIME_DIR"),
        (["--podman-socket", "relative.sock"], "absolute path"),
        (["--publish", "localhost:2375"], "IP address"),
        (["--publish", "127.0.0.1:0"], "1-65535"),
    ],
)
def test_bad_host_choices_are_refused_with_nothing_printed(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needle: str,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    code, out, err = render_cli(capsys, "-f", str(EXAMPLE), *args)
    assert code == 1
    assert out == ""
    assert needle in err


def test_invalid_policy_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("docker_socket_operator.policy.compile")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy("bad", {"rules": [{"allow": ["containers.bogus"]}]})))
    code, out, err = render_cli(capsys, "-f", str(path))
    assert (code, out) == (1, "")
    assert "containers.bogus" in err


def test_not_yaml_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("kind: [unclosed\n")
    code, out, err = render_cli(capsys, "-f", str(path))
    assert (code, out) == (1, "")
    assert "not YAML" in err


def test_two_policies_need_two_host_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([policy("a", {}), policy("b", {})]))
    code, out, err = render_cli(capsys, "-f", str(path))
    assert (code, out) == (1, "")
    assert "127.0.0.1:2375" in err
    path.write_text(yaml.safe_dump_all([policy("a", {}), policy("b", {"port": 2376})]))
    code, out, _ = render_cli(capsys, "-f", str(path))
    assert code == 0
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["ConfigMap", "Pod"] * 2


def test_socket_group_runs_the_image_user_with_that_group() -> None:
    doc = policy("grp", {"socket": {"group": 977}})
    pod = render_podman_kube(doc, IMAGE)[1]
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsNonRoot"]) == (65532, True)
    assert pod["spec"]["securityContext"] == {"supplementalGroups": [977]}


def test_host_port_defaults_to_the_policy_port() -> None:
    pod = render_podman_kube(policy("p", {"port": 2376}), IMAGE)[1]
    port = pod["spec"]["containers"][0]["ports"][0]
    assert (port["hostIP"], port["hostPort"], port["containerPort"]) == ("127.0.0.1", 2376, 2375)


def test_selinux_type_is_passed_to_the_container() -> None:
    pod = render_podman_kube(policy("se", {"seLinuxType": "spc_t"}), IMAGE)[1]
    ctx = pod["spec"]["containers"][0]["securityContext"]
    assert ctx["seLinuxOptions"] == {"type": "spc_t"}


def test_options_are_checked_when_made() -> None:
    with pytest.raises(PolicyError):
        PodmanKubeOptions(socket_path="/a b")
