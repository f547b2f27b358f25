"""`render --format podman-kube` run the way a Podman user runs it, with Debian's real Podman:
the image from `make image` loaded into Podman's storage, `podman kube play` of the rendered
file, client calls through the published port (docker CLI and raw HTTP), the side effects
checked on the daemon itself, then `podman kube down`.

The private Podman service (tests/support/daemons.py) stands in for the host's
/run/podman/podman.sock: `--podman-socket` names its socket, and `podman kube play` runs
against the same storage (--root/--runroot/--storage-driver) and containers.conf.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.daemons import Daemon, docker_cli
from tests.support.operatorproc import policy
from tests.support.rawhttp import assert_blocked, call
from tests.support.waiting import wait_for

# The image build (cold: debootstrap) happens in this module's first test when it runs alone.
pytestmark = [pytest.mark.podman, pytest.mark.docker, pytest.mark.timeout(1200)]

POLICY_NAME = "pk-restart"
TARGET = "pk-target"
OTHER = "pk-other"


def _podman(
    podman: Daemon, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["podman", *podman.storage_args, *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **podman.extra_env},
        timeout=300,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def podman_image(podman: Daemon, image_daemon: Daemon, proxy_image: str) -> str:
    """The image `make image` built, moved into Podman's storage with docker save | podman load
    (no registry anywhere)."""
    saved = docker_cli(image_daemon.host, "save", proxy_image, timeout=300)
    assert saved.returncode == 0, saved.stderr.decode(errors="replace")
    loaded = _podman(podman, "load", stdin=saved.stdout)
    assert loaded.returncode == 0, loaded.stderr.decode(errors="replace")
    # Podman names a docker-archive image localhost/<name>:<tag>: use exactly that name.
    names = [
        line.split(":", 1)[1].strip()
        for line in loaded.stdout.decode().splitlines()
        if line.startswith("Loaded image")
    ]
    assert names, loaded.stdout
    return names[0].split(",")[0]


class Pod:
    def __init__(self, podman: Daemon, manifest: Path, addr: tuple[str, int]) -> None:
        self.podman = podman
        self.manifest = manifest
        self.addr = addr

    @property
    def docker_host(self) -> str:
        return f"tcp://{self.addr[0]}:{self.addr[1]}"

    def logs(self) -> str:
        r = _podman(self.podman, "logs", f"dsp-{POLICY_NAME}-proxy")
        return (r.stdout + r.stderr).decode(errors="replace")[-3000:]

    def answers(self) -> bool:
        try:
            return call(self.addr, "GET", "/_ping").status == 200
        except OSError:
            return False


def _render(tmp_path: Path, podman: Daemon, image: str, addr: tuple[str, int]) -> Path:
    doc = policy(
        POLICY_NAME,
        {
            "rules": [
                {"allow": ["system.ping", "system.version", "containers.list"]},
                {
                    "allow": ["containers.inspect", "containers.restart"],
                    "containers": {"names": [TARGET]},
                },
            ],
            "visibility": {"containers": {"names": [TARGET]}},
        },
    )
    src = tmp_path / "policy.yaml"
    src.write_text(yaml.safe_dump(doc))
    out = tmp_path / "pod.yaml"
    r = subprocess.run(
        [
            sys.executable, "-m", "docker_socket_operator.cli", "render",
            "--format", "podman-kube", "-f", str(src), "--image", image,
            "--podman-socket", podman.socket_path, "--publish", f"{addr[0]}:{addr[1]}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out.write_text(r.stdout)
    return out


@pytest.fixture(scope="module")
def played(
    podman: Daemon, podman_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pod]:
    podman.create(TARGET, labels={"app": "target"})
    podman.create(OTHER, labels={"app": "other"})
    addr = ("127.0.0.1", _free_port())
    manifest = _render(tmp_path_factory.mktemp("podman-kube"), podman, podman_image, addr)
    play = _podman(podman, "kube", "play", str(manifest))
    err = play.stderr.decode(errors="replace")
    if play.returncode != 0 and "catatonit" in err:
        pytest.skip(f"podman kube play needs catatonit for the pod's infra container: {err[-300:]}")
    pod = Pod(podman, manifest, addr)
    try:
        assert play.returncode == 0, err
        wait_for(pod.answers, timeout=60, what=f"the proxy pod on {addr}")
        yield pod
    finally:
        _podman(podman, "kube", "down", str(manifest))
        podman.remove(TARGET)
        podman.remove(OTHER)


def _started_at(podman: Daemon, name: str) -> Any:
    return ((podman.inspect(name) or {}).get("State") or {}).get("StartedAt")


@pytest.mark.usefixtures("docker_cli_available")
def test_allowed_restart_through_the_pod_restarts_the_container(
    podman: Daemon, played: Pod
) -> None:
    before = _started_at(podman, TARGET)
    r = docker_cli(played.docker_host, "restart", "-t", "0", TARGET)
    assert r.returncode == 0, (r.stderr.decode(errors="replace"), played.logs())
    after = wait_for(lambda: (s := _started_at(podman, TARGET)) != before and s, 30, "restart")
    assert after != before
    ps = docker_cli(played.docker_host, "ps", "-a", "--format", "{{.Names}}")
    assert ps.returncode == 0, ps.stderr
    # Only the container the policy shows; the other one does not exist for this client.
    assert ps.stdout.decode().split() == [TARGET]


@pytest.mark.usefixtures("docker_cli_available")
def test_denied_calls_leave_the_daemon_untouched(podman: Daemon, played: Pod) -> None:
    stop = docker_cli(played.docker_host, "stop", TARGET)
    assert stop.returncode != 0 and b"blocked by policy" in stop.stderr, stop.stderr
    assert (podman.inspect(TARGET) or {})["State"]["Running"]
    other_started = _started_at(podman, OTHER)
    other = docker_cli(played.docker_host, "restart", OTHER)
    assert other.returncode != 0, other.stdout
    assert _started_at(podman, OTHER) == other_started
    escape = "pk-escape"
    r = call(
        played.addr,
        "POST",
        f"/v1.41/containers/create?name={escape}",
        {
            "Image": podman.image,
            "Cmd": ["true"],
            "HostConfig": {"Privileged": True, "Binds": ["/:/host"]},
        },
    )
    assert_blocked(r)
    assert podman.inspect(escape) is None, "the daemon created the container anyway"
    assert podman.privileged_containers() == []


def test_kube_down_removes_the_pod(podman: Daemon, played: Pod) -> None:
    down = _podman(podman, "kube", "down", str(played.manifest))
    assert down.returncode == 0, down.stderr.decode(errors="replace")
    pods = _podman(podman, "pod", "ps", "--format", "{{.Name}}")
    assert f"dsp-{POLICY_NAME}" not in pods.stdout.decode().split()
    wait_for(lambda: not played.answers(), 30, "the published port to close")
