"""Bodies read as dockerd reads them, and create/update/exec/volume bodies with host power refused.

Each attack is sent through decide() with a rule that allows the operation with default
constraints, so the test sees what a client would: allowed or "blocked by policy: <reason>"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec
from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.policy.body import decode_docker_json, fold_key
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.constraints import normalise_image
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import BadBody, ContainerFacts, Decision, RequestFacts

WEB = ContainerFacts(id="a" * 64, name="web", labels={"team": "ci"}, image="nginx")


def policy(**create: Any) -> CompiledPolicy:
    rule: dict[str, Any] = {
        "allow": ["containers.*", "exec.*", "volumes.*"],
        "create": create,
    }
    return compile_policy(DockerSocketPolicySpec.model_validate({"rules": [rule]}))


def send(p: CompiledPolicy, method: str, path: str, body: str | bytes | None = None) -> Decision:
    matched = match_operation(method, path)
    assert matched is not None
    raw = body.encode() if isinstance(body, str) else body
    return decide(
        p,
        RequestFacts(
            method=method,
            api_path=path,
            op=matched.op,
            params=matched.params,
            body=decode_docker_json(raw) if raw is not None else None,
            container=WEB,
        ),
    )


def create(body: Any, **constraints: Any) -> Decision:
    raw = body if isinstance(body, str) else json.dumps(body)
    return send(policy(**constraints), "POST", "/containers/create", raw)


# --- decoding ------------------------------------------------------------------------------


def test_decode_folds_keys_like_go() -> None:
    doc = decode_docker_json(
        '{"HostConfig": {"PRIVILEGED": true, "Bind\u017f": ["/:/h"]}}'.encode()
    )
    assert doc == {"hostconfig": {"privileged": True, "binds": ["/:/h"]}}
    assert fold_key("\u212aernelMemory") == "kernelmemory"


@pytest.mark.parametrize("key", ["Con\ufb01g", "Pr\u0131vileged", "Pr\u0130vileged"])
def test_decode_does_not_fold_what_go_does_not(key: str) -> None:
    # str.casefold would turn the ligature into "fi": Go does not, so neither do we.
    assert fold_key(key) not in ("config", "privileged")


def test_map_fields_keep_their_keys() -> None:
    doc = decode_docker_json(b'{"Labels": {"Team": "ci", "com.X": "1"}}')
    assert doc["labels"].as_map() == {"Team": "ci", "com.X": "1"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1} x',  # trailing garbage
        b'{"a": 1}{"b": 2}',
        b"[1]",  # not an object
        b'"x"',
        b'{"a": NaN}',
        b'{"a": "\xff"}',  # invalid UTF-8
        b"\xef\xbb\xbf{}",  # BOM
        b'{"a": 1, "A": 2}',  # duplicate after folding
        b'{"a": 1, "a": 1}',
        b'{"HostConfig": {"Privileged": true}, "hostconfig": {}}',
    ],
)
def test_decode_refuses_what_dockerd_could_read_otherwise(raw: bytes) -> None:
    with pytest.raises(BadBody):
        decode_docker_json(raw)


def test_decode_empty_and_null() -> None:
    assert decode_docker_json(b"") is None
    assert decode_docker_json(b" \r\n") is None
    assert decode_docker_json(b"null") is None


def test_decode_unicode_escapes_in_keys() -> None:
    assert decode_docker_json(b'{"Privil\\u0065ged": true}') == {"privileged": True}


# --- create: the fields with host power ----------------------------------------------------


def test_plain_create_is_allowed() -> None:
    d = create({"Image": "alpine", "Cmd": ["true"], "HostConfig": {"Binds": ["data:/data"]}})
    assert d.allow, d


@pytest.mark.parametrize(
    "raw",
    [
        '{"HostConfig": {"Privileged": true}}',
        '{"HostConfig": {"privileged": true}}',
        '{"HostConfig": {"PRIVILEGED": true}}',
        '{"hostconfig": {"Privileged": true}}',
        '{"HostConfig": {"Privil\\u0065ged": true}}',
        '{"Privileged": true}',  # dockerd 20.10 reads HostConfig fields at the top level too
        '{"HostConfig": {"Privileged": 1}}',  # not a bool: dockerd errors, we refuse
    ],
)
def test_privileged_in_any_spelling_is_refused(raw: str) -> None:
    d = create(raw)
    assert not d.allow and "Privileged" in d.reason, d


def test_duplicate_key_privileged_is_refused() -> None:
    for raw in (
        '{"HostConfig":{"Privileged":false,"privileged":true}}',
        '{"HostConfig":{"Privileged":true,"Privileged":null}}',
    ):
        with pytest.raises(BadBody):
            create(raw)


def test_privileged_allowed_when_opened() -> None:
    assert create({"HostConfig": {"Privileged": True}}, privileged=True).allow


@pytest.mark.parametrize(
    "binds",
    [
        ["/:/host"],
        ["/etc:/etc:ro"],
        ["/srv/ci/../../etc:/x"],
        ["/srv/ci/..:/x"],
        ["//etc:/x"],
        ["/srv/ci/./job:/x"],
        ["/srv/ci//job:/x"],
        ["/srv/cix:/x"],
        ["/srv/ci/work:/x:rshared"],
        ["/srv/ci/work:/x:ro,shared"],
    ],
)
def test_binds_outside_prefix_refused(binds: list[str]) -> None:
    d = create({"HostConfig": {"Binds": binds}}, bindPrefixes=["/srv/ci"])
    assert not d.allow and "Binds" in d.reason, d


def test_binds_key_with_long_s_is_binds() -> None:
    d = create('{"HostConfig": {"Bind\u017f": ["/:/host"]}}')
    assert not d.allow and "Binds" in d.reason


@pytest.mark.parametrize(
    "binds", [["/srv/ci:/w"], ["/srv/ci/job/1:/w:ro"], ["/srv/ci/job/:/w"], ["vol:/w"], ["/anon"]]
)
def test_binds_under_prefix_allowed(binds: list[str]) -> None:
    assert create({"HostConfig": {"Binds": binds}}, bindPrefixes=["/srv/ci/"]).allow


@pytest.mark.parametrize(
    "mount",
    [
        {"Type": "bind", "Source": "/", "Target": "/h"},
        {"type": "BIND", "source": "/etc", "target": "/h"},
        {"Source": "/etc", "Target": "/h"},  # no type: read as a bind
        {
            "Type": "bind",
            "Source": "/srv/ci/x",
            "Target": "/h",
            "BindOptions": {"Propagation": "rshared"},
        },
        {
            "Type": "volume",
            "Source": "v",
            "Target": "/h",
            "VolumeOptions": {
                "DriverConfig": {"Options": {"type": "none", "o": "bind", "device": "/etc"}}
            },
        },
        {
            "Type": "volume",
            "Target": "/h",
            "VolumeOptions": {
                "DriverConfig": {
                    "Name": "local",
                    "Options": {"type": "ext4", "device": "/dev/sda1"},
                }
            },
        },
    ],
)
def test_mounts_with_host_paths_refused(mount: dict[str, Any]) -> None:
    d = create({"HostConfig": {"Mounts": [mount]}}, bindPrefixes=["/srv/ci"])
    assert not d.allow and "Mounts" in d.reason, d


def test_mounts_allowed() -> None:
    mounts = [
        {"Type": "bind", "Source": "/srv/ci/x", "Target": "/a"},
        {"Type": "volume", "Source": "v", "Target": "/b"},
        {"Type": "tmpfs", "Target": "/c"},
        {
            "Type": "volume",
            "Target": "/d",
            "VolumeOptions": {"DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}}},
        },
    ]
    assert create({"HostConfig": {"Mounts": mounts}}, bindPrefixes=["/srv/ci"]).allow


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("NetworkMode", "host"),
        ("NetworkMode", "container:db"),
        ("PidMode", "host"),
        ("PidMode", "container:abc"),
        ("IpcMode", "host"),
        ("IpcMode", "container:db"),
        ("UTSMode", "host"),
        ("UsernsMode", "host"),
        ("CgroupnsMode", "host"),
        ("Cgroup", "container:db"),
    ],
)
def test_host_and_container_namespaces_refused(field: str, value: str) -> None:
    d = create({"HostConfig": {field: value}})
    assert not d.allow and field.lower() in d.reason.lower(), d
    assert create({"HostConfig": {field: value}}, hostNamespaces=True).allow


def test_host_in_another_case_is_no_network_name() -> None:
    for constraints in ({}, {"hostNamespaces": True}):
        d = create({"HostConfig": {"networkmode": "HOST"}}, **constraints)
        assert not d.allow and "mode keyword" in d.reason, d


@pytest.mark.parametrize("mode", ["bridge", "none", "default", "my-net", "shareable"])
def test_ordinary_network_and_ipc_modes_allowed(mode: str) -> None:
    assert create({"HostConfig": {"NetworkMode": mode}}).allow


@pytest.mark.parametrize(
    "caps", [["SYS_ADMIN"], ["CAP_SYS_ADMIN"], ["cap_sys_admin"], ["sys_admin"], ["ALL"], ["all"]]
)
def test_cap_add_refused_in_any_spelling(caps: list[str]) -> None:
    d = create({"HostConfig": {"CapAdd": caps}})
    assert not d.allow and "CapAdd" in d.reason, d


def test_cap_add_allowed_when_listed_or_default() -> None:
    assert create({"HostConfig": {"CapAdd": ["cap_net_admin"]}}, capabilities=["NET_ADMIN"]).allow
    assert create({"HostConfig": {"CapAdd": ["CHOWN", "CAP_KILL"]}}).allow
    assert not create({"HostConfig": {"CapAdd": ["ALL"]}}, capabilities=["NET_ADMIN"]).allow
    assert create({"HostConfig": {"CapAdd": ["ALL"]}}, capabilities=["ALL"]).allow
    assert not create({"HostConfig": {"Capabilities": ["CAP_SYS_ADMIN"]}}).allow


@pytest.mark.parametrize(
    "host_config",
    [
        {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]},
        {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]},
        {"DeviceCgroupRules": ["b 8:* rmw"]},
        {"VolumesFrom": ["db"]},
        {"Links": ["db:db"]},
        {"CgroupParent": "/"},
        {"Sysctls": {"kernel.core_pattern": "|/x"}},
        {"Runtime": "runsc"},
        {"SecurityOpt": ["seccomp=unconfined"]},
        {"SecurityOpt": ["apparmor=unconfined"]},
        {"SecurityOpt": ["label=disable"]},
        {"SecurityOpt": ["label:disable"]},
        {"SecurityOpt": ["systempaths=unconfined"]},
        {"MaskedPaths": []},
        {"ReadonlyPaths": []},
    ],
)
def test_host_power_fields_refused(host_config: dict[str, Any]) -> None:
    assert not create({"Image": "alpine", "HostConfig": host_config}).allow
    assert not create({"Image": "alpine", **host_config}).allow  # top-level HostConfig fields


def test_host_power_fields_allowed_when_opened() -> None:
    assert create({"HostConfig": {"Devices": [{"PathOnHost": "/dev/fuse"}]}}, devices=True).allow
    assert create({"HostConfig": {"VolumesFrom": ["db"]}}, volumesFrom=True).allow
    assert create({"HostConfig": {"CgroupParent": "x"}}, cgroupParent=True).allow
    assert create({"HostConfig": {"Sysctls": {"net.core.somaxconn": "1"}}}, sysctls=True).allow
    assert create({"HostConfig": {"Runtime": "runsc"}}, runtimes=["runsc"]).allow
    assert create({"HostConfig": {"Runtime": "runc"}}).allow
    sec = {"SecurityOpt": ["label:disable"]}
    assert create({"HostConfig": sec}, securityOpt=["label=disable"]).allow
    paths: dict[str, Any] = {"MaskedPaths": [], "ReadonlyPaths": []}
    assert create({"HostConfig": paths}, securityOpt=["systempaths=unconfined"]).allow


@pytest.mark.parametrize(
    "opt", ["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"]
)
def test_no_new_privileges_always_allowed(opt: str) -> None:
    assert create({"HostConfig": {"SecurityOpt": [opt]}}).allow


def test_image_globs() -> None:
    images = ["registry.example/ci/*", "docker.io/library/alpine:*"]
    assert create({"Image": "registry.example/ci/build:1"}, images=images).allow
    assert create({"Image": "alpine"}, images=images).allow
    assert create({"Image": "alpine:3.20"}, images=images).allow
    assert not create({"Image": "evil/alpine"}, images=images).allow
    assert not create({"Image": "registry.example/other"}, images=images).allow
    assert not create({"Cmd": ["sh"]}, images=images).allow
    assert not create({"Image": "sha256:" + "0" * 64}, images=images).allow
    assert normalise_image("alpine") == "docker.io/library/alpine:latest"
    assert normalise_image("localhost:5000/x") == "localhost:5000/x:latest"


# --- update, exec, volumes, start ----------------------------------------------------------


def test_update_refuses_devices_and_cgroup_parent() -> None:
    p = policy()
    path = "/containers/web/update"
    assert send(p, "POST", path, '{"Memory": 1000000, "RestartPolicy": {"Name": "always"}}').allow
    assert not send(p, "POST", path, '{"Devices": [{"PathOnHost": "/dev/mem"}]}').allow
    assert not send(p, "POST", path, '{"devicecgrouprules": ["a *:* rwm"]}').allow
    assert not send(p, "POST", path, '{"CgroupParent": "/"}').allow


def test_exec_privileged_refused_unless_opened() -> None:
    spec = {"rules": [{"allow": ["exec.*"], "exec": {"users": ["app", "1000"]}}]}
    p = compile_policy(DockerSocketPolicySpec.model_validate(spec))
    path = "/containers/web/exec"
    assert send(p, "POST", path, '{"Cmd": ["ls"]}').allow
    assert send(p, "POST", path, '{"Cmd": ["ls"], "User": "app"}').allow
    d = send(p, "POST", path, '{"Cmd": ["sh"], "privileged": true}')
    assert not d.allow and "Privileged" in d.reason
    assert not send(p, "POST", path, '{"Cmd": ["sh"], "User": "root"}').allow
    assert not send(p, "POST", path, '{"Cmd": ["sh"], "USER": "0"}').allow
    opened = compile_policy(
        DockerSocketPolicySpec.model_validate(
            {"rules": [{"allow": ["exec.*"], "exec": {"privileged": True, "users": ["root"]}}]}
        )
    )
    assert send(opened, "POST", path, '{"Cmd": ["sh"], "Privileged": true, "User": "root"}').allow
    # With no users listed, an exec may not pick its user: no `docker exec -u 0` into a
    # container that runs as someone else.
    plain = compile_policy(
        DockerSocketPolicySpec.model_validate({"rules": [{"allow": ["exec.*"]}]})
    )
    assert send(plain, "POST", path, '{"Cmd": ["ls"]}').allow
    for user in ("root", "0", "0:0", "app"):
        assert not send(plain, "POST", path, json.dumps({"Cmd": ["sh"], "User": user})).allow


def test_volume_create_with_bind_options() -> None:
    p = policy(bindPrefixes=["/srv/data"])
    path = "/volumes/create"

    def vol(opts: dict[str, str], driver: str = "local") -> bool:
        return send(
            p, "POST", path, json.dumps({"Name": "v", "Driver": driver, "DriverOpts": opts})
        ).allow

    assert send(p, "POST", path, '{"Name": "v"}').allow
    assert vol({"type": "none", "o": "bind", "device": "/srv/data/v"})
    assert not vol({"type": "none", "o": "bind", "device": "/etc"})
    assert not vol({"type": "none", "o": "bind", "device": "/srv/data/../../etc"})
    assert not vol({"o": "rbind,ro", "device": "/"})
    assert not vol({"type": "none", "device": "/"})
    assert not vol({"type": "ext4", "device": "/dev/sda1"})
    assert not vol({"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"})
    assert not vol({"type": "overlay", "o": "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"})
    assert not vol({"type": "none", "o": "bind", "device": "/etc"}, driver="LOCAL")
    assert vol({"type": "tmpfs", "device": "tmpfs", "o": "size=10m"})
    assert vol({"anything": "x"}, driver="some-plugin")
    assert not send(
        policy(), "POST", path, '{"DriverOpts": {"o": "bind", "device": "/srv/data"}}'
    ).allow


@pytest.mark.parametrize("body", [None, "", "{}", "null", " {} "])
def test_start_without_body_allowed(body: str | None) -> None:
    assert send(policy(), "POST", "/containers/web/start", body).allow


@pytest.mark.parametrize(
    "body",
    [
        '{"Privileged": true}',
        '{"Binds": ["/:/h"]}',
        '{"HostConfig": {"Privileged": true}}',
        '{"x": 1}',
    ],
)
def test_start_body_refused(body: str) -> None:
    # dockerd 20.10 still applies a HostConfig sent to /v1.23/containers/x/start.
    d = send(policy(privileged=True), "POST", "/containers/web/start", body)
    assert not d.allow and "start body" in d.reason
