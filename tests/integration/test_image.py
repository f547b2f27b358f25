"""The container image, built from this repository the way `make image` builds it
(hack/image/build.sh: debootstrap base, wheels, `docker build --network none`) on a private
dockerd, then run the way a compose user runs Tecnativa's image: environment variables and
the daemon's socket mounted read-only, as the image's non-root user with the socket's group.

Slow the first time (debootstrap, about a minute); with $DSO_CACHE warm the build is the
import of the cached rootfs plus one `pip install --no-index`. Skips, with the reason, where
the image cannot be built here (build.sh exits 77: no debootstrap, no Debian mirror, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import (
    Daemon,
    DaemonUnavailable,
    UnixHTTPConnection,
    docker_cli,
    have_docker_cli,
    start_dockerd,
)

# A cold build runs debootstrap; the default 300 s per test is for warm caches.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "image" / "build.sh"
EX_UNAVAILABLE = 77  # build.sh: "cannot build the image on this machine"
NONROOT = "65532:65532"
OCI_LABELS = ("title", "description", "source", "licenses", "version")


def _version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


TAG = f"docker-socket-operator:{_version()}"


@pytest.fixture(scope="module")
def image_daemon() -> Iterator[Daemon]:
    """A dockerd of this module's own: image builds on vfs are big, the shared one stays lean."""
    if not have_docker_cli():
        pytest.skip("docker CLI not installed")
    try:
        d = start_dockerd()
    except DaemonUnavailable as e:
        pytest.skip(f"dockerd unavailable: {e}")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def image(image_daemon: Daemon) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = image_daemon.host
    env["DOCKER_CONFIG"] = "/tmp/dso-test-docker-config"
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), TAG],
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    log = proc.stderr
    if proc.returncode == EX_UNAVAILABLE:
        reason = [line for line in log.splitlines() if "unavailable:" in line]
        pytest.skip(f"cannot build the image here: {(reason or [log[-300:]])[-1]}")
    assert proc.returncode == 0, f"build.sh failed ({proc.returncode}):\n{log[-4000:]}"
    # The script's own timings (debootstrap, import, build) and the total, for the report.
    for line in log.splitlines():
        if line.startswith("[image]"):
            print(line)
    print(f"[image] build.sh total {time.monotonic() - start:.0f}s")
    return TAG


def _inspect_image(daemon: Daemon, ref: str) -> dict[str, Any]:
    r = daemon.api("GET", f"/images/{ref}/json")
    assert r.status == 200, (r.status, r.body)
    doc: dict[str, Any] = r.json()
    return doc


def test_proxy_help_prints_usage(image_daemon: Daemon, image: str) -> None:
    r = docker_cli(image_daemon.host, "run", "--rm", "--network", "none", image, "proxy", "--help")
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert "usage: docker-socket-operator proxy" in out
    assert "--listen" in out and "--policy" in out


def test_image_runs_as_non_root_with_oci_labels(image_daemon: Daemon, image: str) -> None:
    doc = _inspect_image(image_daemon, image)
    config = doc["Config"]
    print(f"[image] {image}: {doc['Size'] / 1e6:.0f} MB")
    assert config["User"] == NONROOT
    assert config["Entrypoint"] == ["/opt/dso/bin/docker-socket-operator"]
    assert config["Cmd"] == ["proxy"]
    assert set(config["ExposedPorts"]) == {"2375/tcp", "9102/tcp"}
    labels = config["Labels"] or {}
    for name in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{name}"), name
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == _version()
    # The base is ~125 MB and the venv ~45 MB; this catches a build that drags in a toolchain.
    assert doc["Size"] < 250e6, doc["Size"]


class _Proxy:
    def __init__(self, daemon: Daemon, name: str, out_dir: Path) -> None:
        self.daemon = daemon
        self.name = name
        self.socket = out_dir / "proxy.sock"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        conn = UnixHTTPConnection(str(self.socket), timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Host": "docker", "Content-Type": "application/json"}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def logs(self) -> str:
        r = docker_cli(self.daemon.host, "logs", self.name)
        return (r.stdout + r.stderr).decode(errors="replace")


@pytest.fixture
def tecnativa_proxy(image_daemon: Daemon, image: str) -> Iterator[_Proxy]:
    """The image as a compose service replacing tecnativa/docker-socket-proxy: CONTAINERS=1,
    the socket read-only, the image's own non-root user plus the socket's group, hardened
    (read-only rootfs, no capabilities), listening on a unix socket in a host directory
    because the daemon has no networks (--bridge=none)."""
    out_dir = Path(tempfile.mkdtemp(prefix="dso-imgout-", dir="/tmp"))
    os.chown(out_dir, 65532, 65532)
    socket_gid = os.stat(image_daemon.socket_path).st_gid
    name = "dso-image-proxy"
    docker_cli(image_daemon.host, "rm", "-f", name)
    run = docker_cli(
        image_daemon.host,
        "run", "-d", "--name", name, "--network", "none",
        "--group-add", str(socket_gid),
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", f"{image_daemon.socket_path}:/var/run/docker.sock:ro",
        "-v", f"{out_dir}:/run/out",
        "-e", "CONTAINERS=1",
        image, "proxy", "--listen", "unix:/run/out/proxy.sock",
    )  # fmt: skip
    proxy = _Proxy(image_daemon, name, out_dir)
    try:
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        deadline = time.monotonic() + 30
        while True:
            try:
                if proxy.call("GET", "/_ping")[0] == 200:
                    break
            except OSError:
                pass
            state = image_daemon.inspect(name) or {}
            if not (state.get("State") or {}).get("Running") or time.monotonic() > deadline:
                pytest.fail(f"proxy container not serving on {proxy.socket}:\n{proxy.logs()}")
            time.sleep(0.2)
        yield proxy
    finally:
        docker_cli(image_daemon.host, "rm", "-f", name)
        shutil.rmtree(out_dir, ignore_errors=True)


def test_tecnativa_env_allows_list_and_blocks_create(
    image_daemon: Daemon, tecnativa_proxy: _Proxy
) -> None:
    status, body = tecnativa_proxy.call("GET", "/containers/json")
    assert status == 200, body
    names = {n for c in json.loads(body) for n in c["Names"]}
    assert f"/{tecnativa_proxy.name}" in names  # the daemon's real answer, through the proxy

    escape = "dso-image-escape"
    status, body = tecnativa_proxy.call(
        "POST",
        f"/containers/create?name={escape}",
        {"Image": image_daemon.image, "Cmd": ["true"], "HostConfig": {"Privileged": True}},
    )
    assert status == 403, body
    assert "blocked by policy" in json.loads(body)["message"]
    assert image_daemon.inspect(escape) is None, "the daemon created the container anyway"
