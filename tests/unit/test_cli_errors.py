"""A mistake on the command line or in a policy file gets one line on stderr that names the
file and the problem, and a non-zero exit: never a traceback, never a page of pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docker_socket_operator.cli import main
from docker_socket_operator.policy.types import PolicyError
from docker_socket_operator.proxy.reload import load_from_file

NOT_YAML = "spec: {rules: [\n"
INVALID = """\
apiVersion: dockersocket.io/v1alpha1
kind: DockerSocketPolicy
metadata: {name: x}
spec:
  rules:
    - allow: containers.list
      bogus: 1
  audit: sometimes
"""
UNKNOWN_OP = "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\n" + (
    "metadata: {name: x}\nspec: {rules: [{allow: [containers.restrat]}]}\n"
)
GOOD = "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\n" + (
    "metadata: {name: x}\nspec: {rules: [{preset: discovery}], audit: all}\n"
)
AUDIT = (
    '{"client": "10.0.0.5:4242", "method": "POST", "path": "/v1.41/containers/web/restart", '
    '"operation": "containers.restart", "decision": "would-deny", "rule": "default deny", '
    '"status": 204, "container": {"name": "web", "labels": {}}}\n'
)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, f"not one line: {err!r}"
    assert "Traceback" not in err and "errors.pydantic.dev" not in err
    return err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {"missing": str(tmp_path / "nope.yaml")}
    for name, text in (
        ("notyaml", NOT_YAML),
        ("invalid", INVALID),
        ("unknown", UNKNOWN_OP),
        ("good", GOOD),
        ("audit", AUDIT),
    ):
        (tmp_path / f"{name}.yaml").write_text(text)
        out[name] = str(tmp_path / f"{name}.yaml")
    return out


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("missing", "cannot read policy file {path}: No such file or directory"),
        ("notyaml", "policy file {path} is not valid YAML: line 2, column 1:"),
        ("invalid", "spec.rules.0.bogus: Extra inputs are not permitted"),
        ("unknown", "rules[0]: 'containers.restrat' names no Docker API operation"),
    ],
)
@pytest.mark.parametrize("command", ["check", "suggest", "render"])
def test_a_bad_policy_file_is_one_line(
    command: str,
    kind: str,
    says: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = files[kind]
    argv = {
        "check": ["check", "-f", path, "GET", "/_ping"],
        "suggest": ["suggest", files["audit"], "--policy", path],
        "render": ["render", "-f", path],
    }[command]
    assert main(argv) in (1, 2)
    err = one_line_error(capsys)
    if command == "render" and kind == "notyaml":
        says = "not YAML: line 2, column 1:"
    if command == "render" and kind == "missing":
        says = "cannot read policy file {path}: No such file or directory"
    assert says.format(path=path) in err


def test_check_names_a_missing_body_file(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    body = files["missing"].replace(".yaml", ".json")
    assert main(["check", "-f", files["good"], "POST", "/containers/create", "--body", body]) == 2
    assert f"cannot read {body}: No such file or directory" in one_line_error(capsys)


def test_suggest_names_a_missing_audit_log(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    log = files["missing"].replace(".yaml", ".log")
    assert main(["suggest", log]) == 2
    assert f"cannot read audit log {log}: No such file or directory" in one_line_error(capsys)


def test_the_proxy_names_a_missing_policy_file(files: dict[str, str]) -> None:
    with pytest.raises(PolicyError, match=r"cannot read policy file .*No such file or directory"):
        load_from_file(files["missing"])


def test_a_good_file_still_works(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-f", files["good"], "GET", "/_ping"]) == 0
    assert "decision: allow" in capsys.readouterr().out
    assert main(["suggest", files["audit"], "--policy", files["good"]]) == 0
    out = capsys.readouterr().out
    assert "containers.restart" in out and "preset: discovery" in out


@pytest.mark.parametrize("argv", [["crd"], ["check", "-f", "{good}", "GET", "/_ping"]])
def test_a_reader_that_leaves_early_gets_no_traceback(
    argv: list[str], files: dict[str, str]
) -> None:
    cmd = [sys.executable, "-m", "docker_socket_operator.cli", *(a.format(**files) for a in argv)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # as `| head -0` does
        err = proc.stderr.read().decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 141


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from docker_socket_operator import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"docker-socket-operator {__version__}"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["check", "--bogus"], "docker-socket-operator check: error: "),
        (["proxy", "--head-timeout", "soon"], "argument --head-timeout: invalid float value"),
        (["render", "-f", "x", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_a_bad_flag_is_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = one_line_error(capsys)
    assert says in err and err.endswith("--help)")
