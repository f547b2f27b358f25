"""Per-engine allowlists (policy/engines.py): each host-power field accepts only the values that
are private on the engine in front; an unidentified engine gets the strictest common subset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.engines import DOCKER, PODMAN, UNKNOWN, classify_engine
from docker_socket_operator.policy.types import CreateContext, Decision, Engine, RequestFacts
from docker_socket_operator.proxy.upstream import response_headers

ENGINES: tuple[Engine, ...] = ("docker", "podman", "unknown")
PREFIX = "/srv/ci"


def create(
    body: Any, engine: Engine, context: CreateContext | None = None, **constraints: Any
) -> Decision:
    rule = {"allow": ["containers.create"], "create": {"bindPrefixes": [PREFIX], **constraints}}
    policy = compile_policy(DockerSocketPolicySpec.model_validate({"rules": [rule]}))
    matched = match_operation("POST", "/containers/create")
    assert matched is not None
    return decide(
        policy,
        RequestFacts(
            method="POST",
            api_path="/containers/create",
            op=matched.op,
            body=decode_docker_json(json.dumps({"Image": "alpine", **body}).encode()),
            engine=engine,
            create_context=context,
        ),
    )


def hc(**fields: Any) -> dict[str, Any]:
    return {"HostConfig": fields}


# --- what no engine lets through ------------------------------------------------------------

REFUSED_EVERYWHERE: dict[str, dict[str, Any]] = {
    # Podman reads a '.'-relative source as a host path (from its working directory).
    "bind-dotdot-relative": hc(Binds=["../../../../:/host"]),
    "bind-dot": hc(Binds=[".:/host"]),
    "bind-dot-slash": hc(Binds=["./x:/host"]),
    "bind-tilde": hc(Binds=["~/x:/host"]),
    "bind-not-clean": hc(Binds=[f"{PREFIX}/./../../etc:/h"]),
    "bind-double-slash": hc(Binds=[f"{PREFIX}//x:/h"]),
    "bind-four-parts": hc(Binds=[f"{PREFIX}:/h:ro:x"]),
    "bind-overlay": hc(Binds=[f"{PREFIX}/x:/h:O"]),
    "bind-chown": hc(Binds=[f"{PREFIX}/x:/h:U"]),
    "bind-idmap": hc(Binds=[f"{PREFIX}/x:/h:idmap"]),
    "bind-suid-dev": hc(Binds=[f"{PREFIX}/x:/h:suid,dev"]),
    "bind-shared": hc(Binds=[f"{PREFIX}/x:/h:rshared"]),
    "anon-relative": hc(Binds=["relative"]),
    # Config.Volumes keys become `-v` flags on Podman: 'src:dst' is a bind.
    "config-volumes-bind": {"Volumes": {"/:/host": {}}},
    "config-volumes-relative-bind": {"Volumes": {"../../..:/host": {}}},
    "config-volumes-relative": {"Volumes": {"data": {}}},
    "tmpfs-key-colon": hc(Tmpfs={"/t:exec": ""}),
    "ns-path-net": hc(NetworkMode="ns:/proc/1/ns/net"),
    "ns-path-pid": hc(PidMode="ns:/proc/1/ns/pid"),
    "ns-path-ipc": hc(IpcMode="ns:/proc/1/ns/ipc"),
    "ns-path-uts": hc(UTSMode="ns:/proc/1/ns/uts"),
    "ns-path-user": hc(UsernsMode="ns:/proc/1/ns/user"),
    "ns-path-cgroup": hc(CgroupnsMode="ns:/proc/1/ns/cgroup"),
    "slirp-loopback": hc(NetworkMode="slirp4netns:allow_host_loopback=true"),
    "pasta-bare": hc(NetworkMode="pasta"),
    "pasta-loopback": hc(NetworkMode="pasta:--map-host-loopback,169.254.1.2"),
    "bridge-options": hc(NetworkMode="bridge:ip=10.88.0.9"),
    "network-options": hc(NetworkMode="mynet:ip=10.88.0.9"),
    "network-list": hc(NetworkMode="mynet,host"),
    "network-host-upper": hc(NetworkMode="HOST"),
    "network-id-prefix": hc(NetworkMode="3f2a9c"),
    "network-slash": hc(NetworkMode="a/b"),
    "pod-pid": hc(PidMode="pod"),
    "pod-net": hc(NetworkMode="pod"),
    "userns-auto-map": hc(UsernsMode="auto:uidmapping=0:0:1"),
    "userns-keep-id-opts": hc(UsernsMode="keep-id:uid=0"),
    "unknown-ipc": hc(IpcMode="weird"),
    "endpoint-host": {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}},
    "endpoint-ns": {"NetworkingConfig": {"EndpointsConfig": {"ns:/proc/1/ns/net": {}}}},
    "mount-glob": hc(Mounts=[{"Type": "glob", "Source": f"{PREFIX}/*", "Target": "/h"}]),
    "mount-devpts": hc(Mounts=[{"Type": "devpts", "Target": "/dev/pts"}]),
    "mount-ramfs": hc(Mounts=[{"Type": "ramfs", "Target": "/r"}]),
    "mount-artifact": hc(Mounts=[{"Type": "artifact", "Source": "a", "Target": "/a"}]),
    "mount-npipe": hc(Mounts=[{"Type": "npipe", "Source": "x", "Target": "/a"}]),
    "mount-no-type": hc(Mounts=[{"Source": f"{PREFIX}/x", "Target": "/a"}]),
    "mount-type-case": hc(Mounts=[{"Type": "Bind", "Source": f"{PREFIX}/x", "Target": "/a"}]),
    "mount-relative-bind": hc(Mounts=[{"Type": "bind", "Source": "../../..", "Target": "/h"}]),
    "mount-volume-path": hc(Mounts=[{"Type": "volume", "Source": "/etc", "Target": "/h"}]),
    "mount-volume-subpath": hc(
        Mounts=[
            {"Type": "volume", "Source": "v", "Target": "/h", "VolumeOptions": {"Subpath": "../.."}}
        ]
    ),
    "mount-tmpfs-source": hc(Mounts=[{"Type": "tmpfs", "Source": "/etc", "Target": "/h"}]),
    "log-path": hc(LogConfig={"Type": "k8s-file", "Config": {"path": "/etc/pwned"}}),
    "log-syslog-socket": hc(
        LogConfig={"Type": "syslog", "Config": {"syslog-address": "unix:///var/run/docker.sock"}}
    ),
    "log-json-path": hc(LogConfig={"Type": "json-file", "Config": {"path": "/etc/pwned"}}),
    "keep-groups": hc(GroupAdd=["keep-groups"]),
    "annotations": hc(Annotations={"run.oci.handler": "krun"}),
    "top-level-ns": {"NetworkMode": "ns:/proc/1/ns/net"},
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(REFUSED_EVERYWHERE))
def test_refused_on_every_engine(case: str, engine: Engine) -> None:
    d = create(REFUSED_EVERYWHERE[case], engine)
    assert not d.allow, d


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "case",
    ["ns-path-net", "ns-path-pid", "pasta-loopback", "slirp-loopback", "pod-pid", "mount-glob"],
)
def test_engine_extensions_stay_refused_with_host_namespaces(case: str, engine: Engine) -> None:
    assert not create(REFUSED_EVERYWHERE[case], engine, hostNamespaces=True).allow


# --- Podman's comma-joined --mount string -------------------------------------------------------

COMMA_MOUNTS = [
    {"Type": "volume", "Source": "v,type=bind,source=/", "Target": "/h"},
    {"Type": "tmpfs", "Target": "/h,type=bind,source=/"},
    {"Type": "bind", "Source": f"{PREFIX}/a,b", "Target": "/h"},
    {"Type": "volume", "Source": "v", "Target": "/h", "Consistency": "x,source=/"},
]


@pytest.mark.parametrize("mount", COMMA_MOUNTS)
@pytest.mark.parametrize("engine", ["podman", "unknown"])
def test_commas_in_mount_fields_refused_where_podman_joins_them(
    mount: dict[str, Any], engine: Engine
) -> None:
    d = create(hc(Mounts=[mount]), engine)
    assert not d.allow and "','" in d.reason, d


def test_commas_in_a_bind_source_are_plain_on_docker() -> None:
    assert create(hc(Mounts=[COMMA_MOUNTS[2]]), "docker").allow


# --- what each engine accepts -----------------------------------------------------------------

ACCEPTED: dict[str, tuple[dict[str, Any], set[Engine]]] = {
    "defaults": ({}, {"docker", "podman", "unknown"}),
    "cli-defaults": (
        hc(
            NetworkMode="default",
            PidMode="",
            IpcMode="",
            UTSMode="",
            UsernsMode="",
            CgroupnsMode="",
            Cgroup="",
            LogConfig={"Type": "", "Config": {}},
            ContainerIDFile="",
            Binds=None,
            Mounts=None,
        ),
        {"docker", "podman", "unknown"},
    ),
    "compose-network": (
        {
            **hc(NetworkMode="proj_default"),
            "NetworkingConfig": {"EndpointsConfig": {"proj_default": {"Aliases": ["web"]}}},
        },
        {"docker", "podman", "unknown"},
    ),
    "bridge-none": (hc(NetworkMode="none", IpcMode="none"), {"docker", "podman", "unknown"}),
    "ipc-private-shareable": (hc(IpcMode="shareable"), {"docker", "podman", "unknown"}),
    "cgroupns-private": (hc(CgroupnsMode="private"), {"docker", "podman", "unknown"}),
    "network-private": (hc(NetworkMode="private"), {"podman"}),
    "pid-private": (hc(PidMode="private"), {"podman"}),
    "uts-private": (hc(UTSMode="private"), {"podman"}),
    "userns-auto": (hc(UsernsMode="auto"), {"podman"}),
    "userns-keep-id": (hc(UsernsMode="keep-id"), {"podman"}),
    "binds": (
        hc(Binds=[f"{PREFIX}/a:/a:ro,Z", "named:/n:nocopy", "/anon", f"{PREFIX}/:/b:rslave"]),
        {"docker", "podman", "unknown"},
    ),
    "binds-podman-options": (hc(Binds=[f"{PREFIX}/a:/a:rbind,noexec,nosuid,nodev"]), {"podman"}),
    "config-volumes": ({"Volumes": {"/data": {}, "/cache": {}}}, {"docker", "podman", "unknown"}),
    "tmpfs": (hc(Tmpfs={"/run": "rw,size=64m"}), {"docker", "podman", "unknown"}),
    "mounts": (
        hc(
            Mounts=[
                {"Type": "bind", "Source": f"{PREFIX}/x", "Target": "/a", "ReadOnly": True},
                {
                    "Type": "volume",
                    "Source": "v",
                    "Target": "/b",
                    "VolumeOptions": {"Subpath": "s/t"},
                },
                {"Type": "tmpfs", "Target": "/c", "TmpfsOptions": {"SizeBytes": 1024}},
                {"Type": "image", "Source": "alpine", "Target": "/d"},
            ]
        ),
        {"docker", "podman", "unknown"},
    ),
    "log-options": (
        hc(LogConfig={"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}),
        {"docker", "podman", "unknown"},
    ),
    "log-local": (hc(LogConfig={"Type": "local"}), {"docker"}),
    "log-k8s-file": (hc(LogConfig={"Type": "k8s-file"}), {"podman"}),
    "cidfile": (hc(ContainerIDFile="/tmp/cid"), {"docker"}),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_exactly_where_listed(case: str, engine: Engine) -> None:
    body, engines = ACCEPTED[case]
    d = create(body, engine)
    assert d.allow == (engine in engines), d


def test_host_namespaces_opens_host_and_container_modes_only() -> None:
    for engine in ENGINES:
        for field, value in (
            ("NetworkMode", "host"),
            ("NetworkMode", "container:db"),
            ("PidMode", "host"),
            ("IpcMode", "container:db"),
            ("UsernsMode", "host"),
            ("Cgroup", "container:db"),
        ):
            assert create(hc(**{field: value}), engine, hostNamespaces=True).allow
        assert not create(hc(UTSMode="container:db"), engine, hostNamespaces=True).allow


def test_unknown_is_the_intersection() -> None:
    for key, modes in UNKNOWN.namespace_modes.items():
        assert modes == DOCKER.namespace_modes[key] & PODMAN.namespace_modes[key]
    assert UNKNOWN.bind_options == DOCKER.bind_options & PODMAN.bind_options
    assert not UNKNOWN.mount_commas and not UNKNOWN.container_id_file


def test_refusal_names_the_engine_and_the_allowed_values() -> None:
    d = create(hc(PidMode="ns:/proc/1/ns/pid"), "podman")
    assert not d.allow
    assert "Podman" in d.reason and "'private'" in d.reason, d.reason


# --- engine detection -------------------------------------------------------------------------

DOCKER_VERSION = {"Platform": {"Name": ""}, "Components": [{"Name": "Engine"}, {"Name": "runc"}]}
PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-13"},
    "Components": [{"Name": "Podman Engine"}, {"Name": "Conmon"}],
}


@pytest.mark.parametrize(
    ("headers", "version", "engine"),
    [
        ({"server": "Docker/26.1.5 (linux)", "api-version": "1.45"}, DOCKER_VERSION, "docker"),
        ({"libpod-buildah-version": "1.39"}, PODMAN_VERSION, "podman"),
        ({"libpod-api-version": "5.4"}, {}, "podman"),
        ({}, PODMAN_VERSION, "podman"),
        ({"server": "Docker/26.1.5 (linux)"}, {}, "unknown"),  # no Engine component
        ({}, DOCKER_VERSION, "unknown"),  # no Server header
        ({"server": "Docker/1", "libpod-api-version": "5"}, DOCKER_VERSION, "unknown"),
        ({}, None, "unknown"),
        ({}, "garbage", "unknown"),
    ],
)
def test_classify_engine(headers: dict[str, str], version: Any, engine: Engine) -> None:
    assert classify_engine(headers, version) == engine


def test_response_headers_by_lower_case_name() -> None:
    head = b"HTTP/1.1 200 OK\r\nServer: Docker/26 (linux)\r\nLibpod-API-Version: 5\r\n\r\n"
    assert response_headers(head) == {"server": "Docker/26 (linux)", "libpod-api-version": "5"}


# --- the offline check command ------------------------------------------------------------------


def test_check_command_takes_the_engine(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("rules:\n- allow: [containers.create]\n")
    body = tmp_path / "b.json"
    body.write_text(json.dumps({"Image": "a", "HostConfig": {"PidMode": "private"}}))

    def check(*extra: str) -> int:
        cmd = [sys.executable, "-m", "docker_socket_operator.cli", "check", "-f", str(policy)]
        cmd += ["POST", "/containers/create", "--body", str(body), *extra]
        return subprocess.run(cmd, capture_output=True, check=False).returncode

    assert check("--engine", "podman") == 0
    assert check("--engine", "docker") == 1
    assert check() == 1  # default: the strictest common checks


# --- other bodies with host paths ---------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        {"type": "none", "o": "bind", "device": "../../.."},
        {"type": "none", "o": "rbind", "device": "./"},
        {"type": "none", "o": "bind", "device": f"{PREFIX}/../../etc"},
        {"type": "bind", "device": "/"},
        {"o": "uid=0", "device": "/dev/sda1"},
        # Options are a Go map: Podman mounts by options["type"] exactly, so a "Type" key that a
        # folded reading takes for tmpfs leaves the mount with no type (mount(8) probes the
        # device, or loop-mounts an image file).
        {"Type": "tmpfs", "device": "/dev/vda", "o": "rw"},
        {"TYPE": "tmpfs", "device": "/dev/vda"},
        {"type": "tmpfs", "O": "bind", "device": "/"},
        {"type": "tmpfs", "Device": "/dev/vda"},
        {"type": "tmpfs", "mkfs": "ext4", "device": "/dev/vda"},
    ],
)
def test_volume_create_host_paths_refused(opts: dict[str, str]) -> None:
    rule = {"allow": ["volumes.create"], "create": {"bindPrefixes": [PREFIX]}}
    policy = compile_policy(DockerSocketPolicySpec.model_validate({"rules": [rule]}))
    matched = match_operation("POST", "/volumes/create")
    assert matched is not None
    for engine in ENGINES:
        body = decode_docker_json(json.dumps({"Name": "v", "DriverOpts": opts}).encode())
        facts = RequestFacts("POST", "/volumes/create", matched.op, body=body, engine=engine)
        assert not decide(policy, facts).allow


@pytest.mark.parametrize("engine", ENGINES)
def test_volume_options_read_as_a_go_map(engine: Engine) -> None:
    """DriverOpts keys as sent, in volume create and in a Mounts entry's DriverConfig: only the
    local driver's own option names, with string values."""
    rule = {"allow": ["volumes.create"], "create": {"bindPrefixes": [PREFIX]}}
    policy = compile_policy(DockerSocketPolicySpec.model_validate({"rules": [rule]}))
    matched = match_operation("POST", "/volumes/create")
    assert matched is not None

    def allowed(opts: dict[str, object]) -> bool:
        body = decode_docker_json(json.dumps({"Name": "v", "DriverOpts": opts}).encode())
        facts = RequestFacts("POST", "/volumes/create", matched.op, body=body, engine=engine)
        return decide(policy, facts).allow

    assert allowed({"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000"})
    assert allowed({"type": "none", "o": "bind", "device": f"{PREFIX}/v"})
    assert not allowed({"type": "tmpfs", "device": "tmpfs", "o": "Size=10m"})
    assert not allowed({"type": "tmpfs", "device": "tmpfs", "size": 10})
    assert not allowed({"Type": "none", "o": "bind", "device": f"{PREFIX}/v"})
    mount = {
        "Type": "volume",
        "Source": "v",
        "Target": "/data",
        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"Type": "tmpfs"}}},
    }
    assert not create(hc(Mounts=[mount]), engine).allow
    mount["VolumeOptions"] = {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}
    assert create(hc(Mounts=[mount]), engine).allow


@pytest.mark.parametrize("engine", ENGINES)
def test_log_drivers_opened_by_the_policy_only(engine: Engine) -> None:
    syslog = hc(LogConfig={"Type": "syslog", "Config": {"syslog-address": "tcp://10.0.0.1:514"}})
    assert not create(syslog, engine).allow
    assert create(syslog, engine, logDrivers=["syslog"]).allow
    assert create(syslog, engine, logDrivers=["*"]).allow
    assert not create(syslog, engine, logDrivers=["gelf"]).allow
    # opening one remote driver does not open the local drivers' host-file options
    k8s_file = hc(LogConfig={"Type": "k8s-file", "Config": {"path": "/etc/cron.d/x"}})
    assert not create(k8s_file, engine, logDrivers=["syslog"]).allow


# --- what a create takes from the daemon as it is ---------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_an_existing_volume_is_mounted_with_the_options_it_was_made_with(engine: Engine) -> None:
    """A named volume that exists keeps its options: one that binds a host path (made by an
    admin, or under a rule with wider bindPrefixes) is not mounted by name, in Binds or Mounts."""

    def vol(options: dict[str, str] | None, driver: str = "local") -> dict[str, Any]:
        return {"Name": "v", "Driver": driver, "Options": options}

    root = CreateContext(volumes={"v": vol({"type": "none", "o": "bind", "device": "/"})})
    mounts = hc(Mounts=[{"Type": "volume", "Source": "v", "Target": "/host"}])
    for body in (hc(Binds=["v:/host"]), mounts, {"Binds": ["v:/host"]}):
        assert create(body, engine).allow  # not looked up: the body alone passes
        decision = create(body, engine, root)
        assert not decision.allow
        assert "existing volume 'v'" in decision.reason
    plain = hc(Binds=["v:/data"])
    assert create(plain, engine, CreateContext(volumes={"v": vol(None)})).allow
    assert create(plain, engine, CreateContext(volumes={"v": vol({})})).allow
    tmpfs = vol({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    assert create(plain, engine, CreateContext(volumes={"v": tmpfs})).allow
    under = vol({"type": "none", "o": "bind", "device": f"{PREFIX}/data"})
    assert create(plain, engine, CreateContext(volumes={"v": under})).allow
    for options in (
        {"Type": "tmpfs", "device": "/dev/vda"},
        {"type": "ext4", "device": "/dev/sda"},
    ):
        assert not create(plain, engine, CreateContext(volumes={"v": vol(options)})).allow
    folded_twice = vol({"type": "tmpfs", "TYPE": "none", "device": "/"})
    assert not create(plain, engine, CreateContext(volumes={"v": folded_twice})).allow
    assert create(plain, engine, CreateContext(volumes={"v": vol({"x": "1"}, "rexray")})).allow


SYSTEMD_BODIES: dict[str, dict[str, Any]] = {
    "cmd-sbin-init": {"Cmd": ["/sbin/init"]},
    "cmd-string": {"Cmd": "/usr/sbin/init"},
    "cmd-local-init": {"Cmd": ["/usr/local/sbin/init", "--x"]},
    "cmd-systemd": {"Cmd": ["/lib/systemd/systemd"]},
    "cmd-bare-systemd": {"Cmd": ["systemd"]},
    "entrypoint-systemd": {"Entrypoint": ["/usr/lib/systemd/systemd"], "Cmd": ["--unit=x"]},
    "shell-form": {"Cmd": ["/bin/sh", "-c", "/sbin/init"]},
}


@pytest.mark.parametrize("body", SYSTEMD_BODIES.values(), ids=SYSTEMD_BODIES.keys())
def test_podmans_systemd_mode_is_refused(body: dict[str, Any]) -> None:
    """Podman runs these commands in systemd mode and bind-mounts the host's cgroup tree into
    the container; dockerd has no such mode."""
    for engine in ("podman", "unknown"):
        decision = create(body, engine)
        assert not decision.allow
        assert "systemd mode" in decision.reason
    assert create(body, "docker").allow


def test_podmans_systemd_mode_from_the_image_is_refused() -> None:
    """With no command in the body, Podman takes the image's: its Entrypoint, else its Cmd."""
    for config in ({"Cmd": ["/sbin/init"]}, {"Entrypoint": ["/usr/lib/systemd/systemd"]}):
        image = CreateContext(image_config=config)
        for engine in ("podman", "unknown"):
            assert not create({}, engine, image).allow
            assert not create({"Cmd": ["--log-level=debug"]}, engine, image).allow
    plain = CreateContext(image_config={"Entrypoint": None, "Cmd": ["sh"]})
    assert create({}, "podman", plain).allow
    assert create({"Cmd": ["/bin/sh", "-c", "echo /sbin/init"]}, "podman", plain).allow
    assert create({"Cmd": ["/sbin/initx"]}, "podman", plain).allow
