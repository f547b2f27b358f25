"""The container image, built from this repository the way `make image` builds it
(hack/image/build.sh: debootstrap base, wheels, `docker build --network none`) on a private
dockerd, then run the way a compose user runs Tecnativa's image: environment variables and
the daemon's socket mounted read-only, as the image's non-root user with the socket's group.

Slow the first time (debootstrap, about a minute); with $DSO_CACHE warm the build is the
import of the cached rootfs plus one `pip install --no-index`. Skips, with the reason, where
the image cannot be built here (build.sh exits 77: no debootstrap, no Debian mirror, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, UnixHTTPConnection, docker_cli
from tests.support.image import project_version
from tests.support.waiting import wait_for

# A cold build runs debootstrap; the default 300 s per test is for warm caches.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

NONROOT = "65532:65532"
OCI_LABELS = ("title", "description", "source", "licenses", "version")
# The promise to whoever pulls it (docs/image.md): at most 80 MB.
MAX_SIZE = 80_000_000


@pytest.fixture(scope="module")
def image(proxy_image: str) -> str:
    """Built once per session (tests/conftest.py), shared with the Podman kube play suite."""
    return proxy_image


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
    assert labels["org.opencontainers.image.version"] == project_version()
    assert doc["Size"] <= MAX_SIZE, f"{doc['Size'] / 1e6:.1f} MB > {MAX_SIZE / 1e6:.0f} MB"


def _run_python(daemon: Daemon, image: str, code: str) -> subprocess.CompletedProcess[bytes]:
    return docker_cli(
        daemon.host, "run", "--rm", "--network", "none", "--read-only",
        "--entrypoint", "/opt/dso/bin/python", image, "-c", code,
    )  # fmt: skip


def test_image_has_no_pip_no_shell_and_runs_both_roles(image_daemon: Daemon, image: str) -> None:
    """What docs/image.md promises is in it, and what it promises is not."""
    r = _run_python(
        image_daemon,
        image,
        "import os, importlib.util as u, ssl;"
        "ssl.create_default_context();"  # the CA bundle is there and loads
        "import docker_socket_operator.controller.commands, kopf, aiohttp;"  # operator role
        "import docker_socket_operator.proxy.server, uvloop;"  # proxy role
        "pkgs = os.listdir('/var/lib/dpkg/status.d');"  # licences of what it ships
        "unlicensed = [p for p in pkgs if not os.path.isfile(f'/usr/share/doc/{p}/copyright')];"
        "print(os.getuid(), u.find_spec('pip') is None, os.path.exists('/bin/sh'),"
        " os.path.exists('/usr/bin/apt-get'), 'libc6' in pkgs, unlicensed == [],"
        " docker_socket_operator.proxy.build())",
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    # The request path is compiled (setup.py) wherever the wheel was built with a C compiler.
    build = "compiled" if shutil.which("gcc") else "python"
    assert r.stdout.decode().split() == ["65532", "True", "False", "False", "True", "True", build]


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

        def serving() -> bool:
            with contextlib.suppress(OSError):
                if proxy.call("GET", "/_ping")[0] == 200:
                    return True
            state = image_daemon.inspect(name) or {}
            if not (state.get("State") or {}).get("Running"):  # pytest.fail is not swallowed
                pytest.fail(
                    f"proxy container exited, not serving on {proxy.socket}:\n{proxy.logs()}"
                )
            return False

        try:
            wait_for(serving, 30, f"the proxy container serving on {proxy.socket}")
        except TimeoutError:
            pytest.fail(f"proxy container not serving on {proxy.socket}:\n{proxy.logs()}")
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
