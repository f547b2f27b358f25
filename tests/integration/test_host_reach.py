"""Red-team findings: requests that made the daemon reach outside its own stores on the node.
On both engines, with the operations allowed: an image mount whose Source is a host path
(Podman made that directory on the host, as root, and created the container), an image import
whose fromSrc is a host path (Podman read the tarball into an image) or a URL (dockerd and
Podman dialled it from the node's network), a pull through a transport, and network creates
that reach the host's network (macvlan/ipvlan on a host interface, an existing host bridge, an
explicit subnet that adds a host route). Each is refused and leaves nothing on the daemon or
the host; the ordinary forms still work."""

from __future__ import annotations

import io
import re
import shutil
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, docker_cli, have_docker_cli
from tests.support.proxyproc import ProxyPool, ProxyProcess
from tests.support.rawhttp import RawResponse, assert_blocked, call

pytestmark = [pytest.mark.docker, pytest.mark.podman]

NAME = "host-reach"
MADE = Path("/tmp/dso-host-reach-made")
SECRET = Path("/tmp/dso-host-reach-secret.tar")
RULES: list[dict[str, Any]] = [
    {
        "allow": ["containers.*", "images.*", "networks.*", "system.ping", "system.version"],
        "create": {"bindPrefixes": ["/tmp/dso-host-reach-allowed"]},
    }
]


@pytest.fixture
def proxy(daemon: Daemon, proxies: ProxyPool) -> Iterator[ProxyProcess]:
    shutil.rmtree(MADE, ignore_errors=True)
    daemon.remove(NAME)
    yield proxies.get(daemon.socket_path, RULES)
    daemon.remove(NAME)
    shutil.rmtree(MADE, ignore_errors=True)


@pytest.fixture
def secret_tar(tmp_path: Path) -> Iterator[Path]:
    inside = tmp_path / "secret.txt"
    inside.write_text("host secret\n")
    with tarfile.open(SECRET, "w") as tar:
        tar.add(inside, arcname="secret.txt")
    yield SECRET
    SECRET.unlink(missing_ok=True)


def image_exists(daemon: Daemon, ref: str) -> bool:
    return daemon.api("GET", f"/images/{ref}/json").status == 200


@pytest.mark.parametrize(
    "source", [str(MADE / "sub"), f"{MADE}/sub,type=bind,source=/", "../../../../tmp/x"]
)
def test_an_image_mount_takes_an_image_not_a_host_path(
    daemon: Daemon, proxy: ProxyProcess, source: str
) -> None:
    mount = {"Type": "image", "Source": source, "Target": "/x"}
    body = {"Image": daemon.image, "Cmd": ["true"], "HostConfig": {"Mounts": [mount]}}
    assert_blocked(call(proxy.addr, "POST", f"/containers/create?name={NAME}", body))
    assert daemon.inspect(NAME) is None
    assert not MADE.exists(), f"{daemon.kind} made a host directory"


def test_import_reads_the_request_body_never_a_host_file(
    daemon: Daemon, proxy: ProxyProcess, secret_tar: Path
) -> None:
    stolen = "dso-host-reach-stolen"
    daemon.api("DELETE", f"/images/{stolen}:v1")
    r = call(proxy.addr, "POST", f"/images/create?fromSrc={secret_tar}&repo={stolen}&tag=v1")
    assert_blocked(r)
    assert "fromSrc" in r.message
    assert not image_exists(daemon, f"{stolen}:v1"), f"{daemon.kind} imported a host file"
    # The docker CLI's `docker import file.tar` sends the file as the body: still works.
    r = call(
        proxy.addr,
        "POST",
        f"/images/create?fromSrc=-&repo={stolen}&tag=body",
        raw=secret_tar.read_bytes(),
        headers={"Content-Type": "application/x-tar"},
    )
    assert r.status == 200, r.body[:300]
    found = re.search(rb"sha256:([0-9a-f]{64})", r.body)
    assert found is not None, r.body[:300]
    assert image_exists(daemon, found.group(1).decode())
    daemon.api("DELETE", f"/images/{found.group(1).decode()}", query={"force": "1"})


def test_import_from_a_url_never_dials_from_the_node(daemon: Daemon, proxy: ProxyProcess) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        r = call(proxy.addr, "POST", f"/images/create?fromSrc=http://127.0.0.1:{port}/a.tar")
        assert_blocked(r)
        # The daemon dials before it answers: a connection would be queued by now.
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


@pytest.mark.parametrize(
    "image",
    [f"docker-archive:{SECRET}", f"oci-archive:{SECRET}", "dir:/etc", "dir:5000/etc", "oci:x"],
)
def test_a_pull_names_a_registry_image_not_a_transport(
    daemon: Daemon, proxy: ProxyProcess, image: str
) -> None:
    before = {i["Id"] for i in daemon.api("GET", "/images/json").json()}
    assert_blocked(call(proxy.addr, "POST", f"/images/create?fromImage={image}"))
    assert {i["Id"] for i in daemon.api("GET", "/images/json").json()} <= before


NETWORK_ATTACKS: dict[str, dict[str, Any]] = {
    "macvlan-on-a-host-interface": {"Driver": "macvlan", "Options": {"parent": "lo"}},
    "ipvlan-on-a-host-interface": {"Driver": "ipvlan", "Options": {"parent": "lo"}},
    "host-bridge-reused": {"Options": {"com.docker.network.bridge.name": "dso-reach0"}},
    "subnet-over-metadata": {"IPAM": {"Config": [{"Subnet": "169.254.169.254/32"}]}},
    "subnet-with-gateway": {
        "IPAM": {"Config": [{"Subnet": "10.251.7.0/24", "Gateway": "10.251.7.1"}]}
    },
    "ipam-driver": {"IPAM": {"Driver": "dhcp"}},
    "config-from": {"ConfigFrom": {"Network": "somebody-elses"}},
    "unknown-field": {"Ingres": True, "Driver": "bridge", "NewHostPowerField": {"x": 1}},
    "driver-case": {"Driver": "MACVLAN", "Options": {"parent": "lo"}},
}


@pytest.mark.parametrize("attack", sorted(NETWORK_ATTACKS))
def test_a_network_create_stays_a_private_bridge(
    daemon: Daemon, proxy: ProxyProcess, attack: str
) -> None:
    name = f"dso-reach-{attack}"[:40]
    daemon.api("DELETE", f"/networks/{name}")
    body = {"Name": name, **NETWORK_ATTACKS[attack]}
    assert_blocked(call(proxy.addr, "POST", "/networks/create", body))
    assert daemon.api("GET", f"/networks/{name}").status == 404, f"{attack} on {daemon.kind}"


def test_compose_and_cli_network_bodies_still_work(daemon: Daemon, proxy: ProxyProcess) -> None:
    name = "dso-reach-plain"
    daemon.api("DELETE", f"/networks/{name}")
    body = {
        "Name": name,
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Internal": False,
        "Attachable": True,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Config": [], "Options": {}},
        "Options": {"com.docker.network.driver.mtu": "1400"},
        "Labels": {"com.docker.compose.network": "default"},
    }
    r = call(proxy.addr, "POST", "/networks/create", body)
    assert r.status == 201, r.body[:300]
    assert daemon.api("DELETE", f"/networks/{name}").status in (200, 204)


def build_context(dockerfile: str) -> bytes:
    data = dockerfile.encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build(proxy: ProxyProcess, daemon: Daemon, query: str, marker: str) -> RawResponse:
    # A fresh RUN line each time (no cache), printing the network devices it sees.
    dockerfile = f"FROM {daemon.image}\nRUN echo {marker} && cat /proc/net/dev\n"
    return call(
        proxy.addr,
        "POST",
        f"/build?t=dso-host-reach-build&nocache=1&{query}",
        raw=build_context(dockerfile),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )


BUILD_ATTACKS = {
    "host-network": "networkmode=host",
    "host-network-upper": "networkmode=HOST",
    "network-of-a-container": "networkmode=container:x",
    "podman-add-all-capabilities": "addcaps=%5B%22ALL%22%5D",
    "podman-host-namespaces": "nsoptions=%5B%7B%22Name%22%3A%22network%22%2C%22Host%22%3Atrue%7D%5D",
    "podman-host-device": "devices=%5B%22%2Fdev%2Fnull%22%5D",
    "podman-host-file-secret": "secrets=%5B%22id%3Dx%2Csrc%3D%2Fetc%2Fhostname%22%5D",
    "podman-host-volume": "volume=%5B%22%2F%3A%2Fhost%22%5D",
    "podman-writes-host-file": "rusagelogfile=%2Ftmp%2Fdso-host-reach-made",
    "cgroup-parent": "cgroupparent=%2Fdso",
    "remote-context": "remote=http%3A%2F%2F127.0.0.1%3A1%2Fctx.tar",
    "dockerfile-outside-the-context": "dockerfile=..%2F..%2F..%2Fetc%2Fhostname",
}


@pytest.mark.parametrize("attack", sorted(BUILD_ATTACKS))
def test_a_build_runs_in_a_private_build_container(
    daemon: Daemon, proxy: ProxyProcess, attack: str
) -> None:
    marker = f"dso-reach-{attack}"
    r = build(proxy, daemon, BUILD_ATTACKS[attack], marker)
    assert_blocked(r)
    assert marker.encode() not in r.body
    assert not MADE.exists()


def test_a_plain_build_still_works(daemon: Daemon, proxy: ProxyProcess) -> None:
    r = build(proxy, daemon, "networkmode=default&q=0&rm=1&dockerfile=Dockerfile", "dso-plain")
    assert r.status == 200, r.body[:300]
    assert b"dso-plain" in r.body
    assert b"rror" not in r.body, r.body[-300:]


@pytest.mark.parametrize(
    "o", ["move", "rmove", "X-mount.subdir=x", "nodev,move", "X-mount.idmap=0:0:1"]
)
def test_a_tmpfs_volume_takes_tmpfs_options_only(
    daemon: Daemon, proxies: ProxyPool, o: str
) -> None:
    """Podman hands a local volume's `o` to mount(8), which also reads operations (`move` a
    host mount into the volume) and X-mount.* actions."""
    proxy = proxies.get(daemon.socket_path, [{"allow": ["volumes.*", "system.ping"]}])
    name = "dso-host-reach-tmpfs"
    daemon.api("DELETE", f"/volumes/{name}")
    opts = {"type": "tmpfs", "device": "/tmp", "o": o}
    r = call(proxy.addr, "POST", "/volumes/create", {"Name": name, "DriverOpts": opts})
    assert_blocked(r)
    assert daemon.api("GET", f"/volumes/{name}").status == 404
    r = call(
        proxy.addr,
        "POST",
        "/volumes/create",
        {"Name": name, "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "nodev,nosuid"}},
    )
    assert r.status == 201, r.body[:300]
    daemon.api("DELETE", f"/volumes/{name}")


def test_the_docker_cli_builds_through_the_proxy(
    daemon: Daemon, proxy: ProxyProcess, tmp_path: Path
) -> None:
    """`docker build` sends every option it has (cgroupparent, cpusetmems, ulimits...), empty."""
    if not have_docker_cli():
        pytest.skip("docker CLI not installed")
    (tmp_path / "Dockerfile").write_text(f"FROM {daemon.image}\nRUN echo dso-cli-build\n")
    proc = docker_cli(
        proxy.docker_host, "build", "-t", "dso-host-reach-cli", str(tmp_path), timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-500:]
    proc = docker_cli(
        proxy.docker_host, "build", "--network", "host", "-t", "dso-host-reach-cli", str(tmp_path)
    )
    assert proc.returncode != 0
    assert "networkmode" in proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("param", ["checkpoint=..%2F..%2F..%2F..%2F..%2Fetc", "checkpoint=c1"])
def test_a_start_never_restores_a_checkpoint(
    daemon: Daemon, proxy: ProxyProcess, param: str
) -> None:
    """dockerd joins `checkpoint` to its checkpoint root, `..` included: on an experimental
    daemon root CRIU then restores from any host directory, one the client wrote through its
    own container's files. A start is a start; checkpoints are their own operations."""
    daemon.create(NAME, ["sleep", "60"], start=False)
    assert_blocked(call(proxy.addr, "POST", f"/containers/{NAME}/start?{param}"))
    state = daemon.inspect(NAME)
    assert state is not None and not state["State"]["Running"]
    plain = call(proxy.addr, "POST", f"/containers/{NAME}/start")
    assert plain.status == 204, plain.body[:300]
