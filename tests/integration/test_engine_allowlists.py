"""Issue 7, class 1: field-level default deny, per engine. On both engines, with containers.create
allowed, every engine-specific way to reach the host (Podman's '.'-relative bind sources,
`src:dst` keys in Config.Volumes, `ns:`/`pasta:`/`slirp4netns:` modes, comma-joined mount fields,
log files at any path, ...) is refused and leaves no container on the daemon; the bodies the
docker CLI, docker-py and compose-style clients send still work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.types import Mount

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool, ProxyProcess
from tests.support.rawhttp import assert_blocked, call

pytestmark = [pytest.mark.docker, pytest.mark.podman]

ALLOWED = "/tmp/dso-allowed-engines"
NAME = "engine-allowlist"
NET = "dso-allowlist-net"
PWNED = Path("/tmp/dso-engine-pwned")
RULES: list[dict[str, Any]] = [
    {
        "allow": [
            "containers.*",
            "system.ping",
            "system.version",
            "images.inspect",
            "volumes.create",
        ],
        "create": {"bindPrefixes": [ALLOWED]},
    }
]


@pytest.fixture
def proxy(daemon: Daemon, proxies: ProxyPool) -> Iterator[ProxyProcess]:
    Path(ALLOWED).mkdir(exist_ok=True)
    daemon.remove(NAME)
    if daemon.api("GET", f"/networks/{NET}").status == 404:
        r = daemon.api("POST", "/networks/create", {"Name": NET})
        assert r.status == 201, r.body[:300]
    yield proxies.get(daemon.socket_path, RULES)
    daemon.remove(NAME)


def hc(**fields: Any) -> dict[str, Any]:
    return {"HostConfig": fields}


ATTACKS: dict[str, dict[str, Any]] = {
    # Podman: a source starting with '.' is a host path relative to the service's cwd.
    "bind-relative-root": hc(Binds=["../../../../../../../..:/host"]),
    "bind-dot": hc(Binds=[".:/host"]),
    "bind-dot-slash": hc(Binds=["./:/host"]),
    "bind-overlay-option": hc(Binds=[f"{ALLOWED}:/h:O"]),
    "bind-chown-option": hc(Binds=[f"{ALLOWED}:/h:U"]),
    # Podman: Config.Volumes keys become -v flags, so 'src:dst' is a bind.
    "config-volumes-bind": {"Volumes": {"/:/host": {}}},
    "config-volumes-relative-bind": {"Volumes": {"../../../../../../..:/host": {}}},
    "tmpfs-key-options": hc(Tmpfs={"/t:exec,suid": ""}),
    # Podman: ns:<path> joins any namespace, the host's included.
    "net-ns-path": hc(NetworkMode="ns:/proc/1/ns/net"),
    "pid-ns-path": hc(PidMode="ns:/proc/1/ns/pid"),
    "ipc-ns-path": hc(IpcMode="ns:/proc/1/ns/ipc"),
    "uts-ns-path": hc(UTSMode="ns:/proc/1/ns/uts"),
    "userns-ns-path": hc(UsernsMode="ns:/proc/1/ns/user"),
    "slirp4netns-loopback": hc(NetworkMode="slirp4netns:allow_host_loopback=true"),
    "pasta-loopback": hc(NetworkMode="pasta:--map-host-loopback,169.254.1.2"),
    "network-with-options": hc(NetworkMode=f"{NET}:ip=10.89.9.9"),
    "network-list-with-host": hc(NetworkMode=f"{NET},host"),
    "network-host-upper": hc(NetworkMode="HOST"),
    "endpoint-host": {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}},
    "pid-pod": hc(PidMode="pod"),
    # Podman joins Mounts fields into one "type=..,source=..,target=.." flag.
    "mount-comma-source": hc(
        Mounts=[{"Type": "volume", "Source": "v,type=bind,source=/", "Target": "/h"}]
    ),
    "mount-glob": hc(Mounts=[{"Type": "glob", "Source": "/etc/*", "Target": "/h"}]),
    "mount-ramfs": hc(Mounts=[{"Type": "ramfs", "Target": "/r"}]),
    "mount-devpts": hc(Mounts=[{"Type": "devpts", "Target": "/dev/pts2"}]),
    "mount-relative-bind": hc(Mounts=[{"Type": "bind", "Source": "../../..", "Target": "/h"}]),
    # Podman's k8s-file driver writes the log wherever `path` says.
    "log-path": hc(LogConfig={"Type": "k8s-file", "Config": {"path": str(PWNED)}}),
    "log-syslog-docker-socket": hc(
        LogConfig={"Type": "syslog", "Config": {"syslog-address": "unix:///var/run/docker.sock"}}
    ),
    "group-keep-groups": hc(GroupAdd=["keep-groups"]),
    "annotations": hc(Annotations={"run.oci.keep_original_groups": "1"}),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_engine_specific_host_access_is_refused(
    daemon: Daemon, proxy: ProxyProcess, attack: str
) -> None:
    body = {"Image": daemon.image, "Cmd": ["true"], **ATTACKS[attack]}
    assert_blocked(call(proxy.addr, "POST", f"/containers/create?name={NAME}", body))
    assert daemon.inspect(NAME) is None, f"{attack}: container created on {daemon.kind}"
    assert not PWNED.exists()


def test_comma_in_a_mount_target_is_refused_where_it_adds_options(
    daemon: Daemon, proxy: ProxyProcess
) -> None:
    target = "/h,type=bind,source=/"
    body = {
        "Image": daemon.image,
        "Cmd": ["true"],
        **hc(Mounts=[{"Type": "tmpfs", "Target": target}]),
    }
    r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
    if daemon.kind == "podman":
        assert_blocked(r)
        assert daemon.inspect(NAME) is None
        return
    # dockerd reads the struct field as it is: a tmpfs at a path with a comma in its name.
    assert r.status == 201, r.body[:300]
    mounts = (daemon.inspect(NAME) or {})["HostConfig"]["Mounts"]
    assert [(m["Type"], m["Target"]) for m in mounts] == [("tmpfs", target)]


def test_proxy_names_the_engine_it_fronts(daemon: Daemon, proxy: ProxyProcess) -> None:
    assert proxy.ready_info.get("engine") == daemon.kind


def test_container_id_file_is_refused_where_the_engine_writes_it(
    daemon: Daemon, proxy: ProxyProcess
) -> None:
    cid_file = Path(f"/tmp/dso-cidfile-{daemon.kind}")
    cid_file.unlink(missing_ok=True)
    body = {"Image": daemon.image, "Cmd": ["true"], **hc(ContainerIDFile=str(cid_file))}
    r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
    if daemon.kind == "podman":
        assert_blocked(r)
        assert daemon.inspect(NAME) is None
    else:  # dockerd ignores the field (the docker CLI writes that file itself)
        assert r.status == 201, r.body[:300]
    assert not cid_file.exists()


def test_network_ids_are_refused(daemon: Daemon, proxy: ProxyProcess) -> None:
    """dockerd also resolves networks by ID and ID prefix: the host network's ID must not pass
    as a 'name'."""
    host = daemon.api("GET", "/networks/host")
    if host.status != 200:
        pytest.skip(f"{daemon.kind} has no host network object")
    host_id: str = host.json()["Id"]
    for ref in (host_id, host_id[:12]):
        body = {"Image": daemon.image, "Cmd": ["true"], **hc(NetworkMode=ref)}
        assert_blocked(call(proxy.addr, "POST", f"/containers/create?name={NAME}", body))
        assert daemon.inspect(NAME) is None


@pytest.mark.parametrize(
    "opts",
    [
        {"type": "none", "o": "bind", "device": "../../../../../../.."},
        {"type": "none", "o": "rbind", "device": "."},
        {"type": "bind", "device": "/"},
        # Podman mounts by options["type"] exactly: "Type" leaves the mount with no type, and
        # mount(8) probes the device (a host disk) or loop-mounts an image file.
        {"Type": "tmpfs", "device": "/dev/vda", "o": "rw"},
        {"TYPE": "tmpfs", "device": "/dev/vda"},
    ],
)
def test_volume_create_with_relative_or_host_device_is_refused(
    daemon: Daemon, proxy: ProxyProcess, opts: dict[str, str]
) -> None:
    body = {"Name": "dso-hostvol", "Driver": "local", "DriverOpts": opts}
    assert_blocked(call(proxy.addr, "POST", "/volumes/create", body))
    assert daemon.api("GET", "/volumes/dso-hostvol").status == 404


HOSTDIR = Path("/tmp/dso-engine-hostdir")


@pytest.mark.parametrize(
    "mount",
    [hc(Binds=["dso-hostbound:/host"]),
     hc(Mounts=[{"Type": "volume", "Source": "dso-hostbound", "Target": "/host"}])],
    ids=["binds", "mounts"],
)  # fmt: skip
def test_an_existing_volume_that_binds_a_host_path_is_not_mounted(
    daemon: Daemon, proxy: ProxyProcess, mount: dict[str, Any]
) -> None:
    """A volume made outside this rule (by an admin, or under wider bindPrefixes) keeps its
    options: mounted by name it would hand the container a host directory. The create is
    refused on both engines; a plain existing volume still mounts."""
    HOSTDIR.mkdir(exist_ok=True)
    (HOSTDIR / "secret").write_text("host secret\n")
    opts = {"type": "none", "o": "bind", "device": str(HOSTDIR)}
    made = daemon.api(
        "POST", "/volumes/create", {"Name": "dso-hostbound", "Driver": "local", "DriverOpts": opts}
    )
    assert made.status == 201, made.body[:300]
    plain = daemon.api("POST", "/volumes/create", {"Name": "dso-plainvol"})
    assert plain.status == 201, plain.body[:300]
    try:
        body = {"Image": daemon.image, "Cmd": ["cat", "/host/secret"], **mount}
        refused = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
        assert_blocked(refused)
        assert "existing volume 'dso-hostbound'" in refused.body.decode()
        assert daemon.inspect(NAME) is None
        ok = {"Image": daemon.image, "Cmd": ["true"], **hc(Binds=["dso-plainvol:/data"])}
        r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", ok)
        assert r.status == 201, r.body[:300]
    finally:
        daemon.remove(NAME)
        daemon.api("DELETE", "/volumes/dso-hostbound", query={"force": "1"})
        daemon.api("DELETE", "/volumes/dso-plainvol", query={"force": "1"})


def test_podmans_systemd_mode_is_refused(daemon: Daemon, proxy: ProxyProcess) -> None:
    """Podman runs /sbin/init (and any `systemd`) in systemd mode and bind-mounts the host's
    cgroup tree into the container, read-write on cgroup v1: refused on Podman, from the body
    or from the image's own command. dockerd has no such mode."""
    body = {"Image": daemon.image, "Cmd": ["/sbin/init"]}
    r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
    if daemon.kind == "docker":
        assert r.status == 201, r.body[:300]
        return
    assert_blocked(r)
    assert daemon.inspect(NAME) is None
    # The same command as the image's default, by a commit made straight on the daemon.
    daemon.create("dso-sysd-src", ["true"], start=False)
    try:
        committed = daemon.api(
            "POST",
            "/commit",
            {},  # Podman decodes a body here, even an empty one
            query={"container": "dso-sysd-src", "repo": "dso-sysd", "tag": "1",
                   "changes": 'CMD ["/sbin/init"]'},
        )  # fmt: skip
        assert committed.status == 201, committed.body[:300]
        r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", {"Image": "dso-sysd:1"})
        assert_blocked(r)
        assert "systemd mode" in r.body.decode()
        assert daemon.inspect(NAME) is None
    finally:
        daemon.remove("dso-sysd-src")
        daemon.api("DELETE", "/images/dso-sysd:1", query={"force": "1"})


# --- legitimate clients -----------------------------------------------------------------------


def test_docker_cli_create_with_volumes_network_and_mounts(
    daemon: Daemon, proxy: ProxyProcess
) -> None:
    if docker_cli(proxy.docker_host, "version").returncode not in (0, 1):
        pytest.skip("docker CLI not usable")
    Path(ALLOWED, "cli").mkdir(exist_ok=True)
    proc = docker_cli(
        proxy.docker_host,
        "create",
        "--name",
        NAME,
        "--network",
        NET,
        "-v",
        "dso-allow-vol:/data",
        "-v",
        f"{ALLOWED}/cli:/w:ro",
        "--tmpfs",
        "/run",
        "--mount",
        "type=volume,source=dso-allow-vol2,target=/v2",
        "--ipc",
        "private",
        daemon.image,
        "true",
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    doc = daemon.inspect(NAME) or {}
    assert NET in (doc.get("NetworkSettings") or {}).get("Networks", {}), doc.get("HostConfig")


def test_docker_py_create(daemon: Daemon, proxy: ProxyProcess) -> None:
    client = docker.DockerClient(base_url=proxy.docker_host, version="auto", timeout=30)
    try:
        ctr = client.containers.create(
            daemon.image,
            ["true"],
            name=NAME,
            network=NET,
            volumes={"dso-allow-vol": {"bind": "/data", "mode": "rw"}},
            tmpfs={"/run": "size=8m"},
            mounts=[Mount("/v3", "dso-allow-vol3", type="volume")],
        )
    finally:
        client.close()
    assert (daemon.inspect(NAME) or {}).get("Id") == ctr.id


def test_compose_style_compat_body(daemon: Daemon, proxy: ProxyProcess) -> None:
    Path(ALLOWED, "compose").mkdir(exist_ok=True)
    body = {
        "Image": daemon.image,
        "Cmd": ["true"],
        "Labels": {"com.docker.compose.project": "dso"},
        "Volumes": {"/data": {}},
        "HostConfig": {
            "NetworkMode": NET,
            "Binds": [f"{ALLOWED}/compose:/w:rw"],
            "Mounts": [{"Type": "volume", "Source": "dso-allow-vol", "Target": "/data"}],
            "LogConfig": {"Type": "", "Config": {}},
            "RestartPolicy": {"Name": "no"},
            "IpcMode": "",
            "PidMode": "",
            "CgroupnsMode": "",
        },
        "NetworkingConfig": {"EndpointsConfig": {NET: {"Aliases": ["web"]}}},
    }
    r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
    assert r.status == 201, r.body[:300]


@pytest.mark.podman
def test_engine_is_asked_again_when_the_daemon_appears(
    podman: Daemon, fresh_proxy: Callable[..., ProxyProcess], tmp_path: Path
) -> None:
    """Started before its daemon, the proxy applies the strictest checks; once the socket
    answers, it identifies Podman and applies Podman's allowlist (PidMode=private is private
    there, unknown to dockerd)."""
    link = tmp_path / "engine.sock"
    proxy = fresh_proxy(str(link), RULES)
    assert proxy.ready_info.get("engine") == "unknown"
    body = {"Image": podman.image, "Cmd": ["true"], **hc(PidMode="private")}
    assert_blocked(call(proxy.addr, "POST", f"/containers/create?name={NAME}", body))
    link.symlink_to(podman.socket_path)
    podman.remove(NAME)
    try:
        r = call(proxy.addr, "POST", f"/containers/create?name={NAME}", body)
        assert r.status == 201, r.body[:300]
    finally:
        podman.remove(NAME)
