"""Tecnativa docker-socket-proxy environment variables: same defaults, same sections, its holes shut."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.tecnativa import SECTIONS, env_flag, spec_from_tecnativa_env
from docker_socket_operator.policy.types import ContainerFacts, PolicyError, RequestFacts

WEB = ContainerFacts(id="a" * 64, name="web")


def env_policy(**env: str) -> CompiledPolicy:
    return compile_policy(spec_from_tecnativa_env(env))


def allowed(p: CompiledPolicy, method: str, path: str, body: object = None) -> bool:
    matched = match_operation(method, path)
    assert matched is not None, path
    raw = json.dumps(body).encode() if body is not None else b""
    req = RequestFacts(
        method=method, api_path=path, op=matched.op, body=decode_docker_json(raw), container=WEB
    )
    return decide(p, req).allow


def test_defaults_are_ping_version_events() -> None:
    p = env_policy()
    assert allowed(p, "GET", "/_ping") and allowed(p, "HEAD", "/_ping")
    assert allowed(p, "GET", "/version") and allowed(p, "GET", "/events")
    for method, path in [
        ("GET", "/containers/json"),
        ("GET", "/info"),
        ("GET", "/images/json"),
        ("POST", "/containers/create"),
    ]:
        assert not allowed(p, method, path), path
    assert not env_policy(PING="0", VERSION="0", EVENTS="0").plans


@pytest.mark.parametrize(
    ("section", "read", "write"),
    [
        ("CONTAINERS", ("GET", "/containers/json"), ("POST", "/containers/web/restart")),
        ("IMAGES", ("GET", "/images/json"), ("POST", "/images/create")),
        ("NETWORKS", ("GET", "/networks"), ("POST", "/networks/create")),
        ("VOLUMES", ("GET", "/volumes"), ("POST", "/volumes/create")),
        ("INFO", ("GET", "/info"), None),
        ("SYSTEM", ("GET", "/system/df"), None),
        ("SERVICES", ("GET", "/services"), ("DELETE", "/services/s1")),
        ("TASKS", ("GET", "/tasks"), None),
        ("NODES", ("GET", "/nodes"), ("POST", "/nodes/n1/update")),
        ("SWARM", ("GET", "/swarm"), ("POST", "/swarm/leave")),
        ("SECRETS", ("GET", "/secrets"), ("POST", "/secrets/create")),
        ("CONFIGS", ("GET", "/configs"), ("POST", "/configs/create")),
        ("PLUGINS", ("GET", "/plugins"), ("POST", "/plugins/p1/disable")),
        ("DISTRIBUTION", ("GET", "/distribution/alpine/json"), None),
        ("EXEC", ("GET", "/exec/e1/json"), ("POST", "/exec/e1/start")),
        ("BUILD", None, ("POST", "/build")),
        ("COMMIT", None, ("POST", "/commit")),
        ("AUTH", None, ("POST", "/auth")),
        ("SESSION", None, ("POST", "/session")),
    ],
)
def test_each_section_var(
    section: str, read: tuple[str, str] | None, write: tuple[str, str] | None
) -> None:
    off, on, on_post = (
        env_policy(),
        env_policy(**{section: "1"}),
        env_policy(**{section: "1", "POST": "1"}),
    )
    if read:
        assert not allowed(off, *read) and allowed(on, *read) and allowed(on_post, *read)
    if write:
        assert not allowed(on, *write) and allowed(on_post, *write)
        assert not allowed(env_policy(POST="1"), *write)


@pytest.mark.parametrize(
    ("section", "method", "path"),
    [
        ("SERVICES", "POST", "/services/create"),
        ("SERVICES", "POST", "/services/s1/update"),
        ("SWARM", "POST", "/swarm/init"),
        ("SWARM", "POST", "/swarm/join"),
        ("PLUGINS", "POST", "/plugins/pull"),
        ("PLUGINS", "POST", "/plugins/create"),
        ("PLUGINS", "POST", "/plugins/p1/set"),
        ("PLUGINS", "POST", "/plugins/p1/enable"),
        ("PLUGINS", "POST", "/plugins/p1/upgrade"),
        ("GRPC", "POST", "/grpc"),
    ],
)
def test_unchecked_host_power_needs_allow_privileged(section: str, method: str, path: str) -> None:
    # A service spec, a plugin's privileges, a swarm manager or a BuildKit solve can ask for
    # what the create checks refuse; with the section and POST alone they stay closed.
    assert not allowed(env_policy(**{section: "1", "POST": "1"}), method, path)
    assert allowed(env_policy(**{section: "1", "POST": "1", "ALLOW_PRIVILEGED": "1"}), method, path)
    assert not allowed(env_policy(POST="1", ALLOW_PRIVILEGED="1"), method, path)


def test_all_sections_known() -> None:
    assert "CONTAINERS" in SECTIONS and len(SECTIONS) == 23


def test_delete_follows_post_unless_set() -> None:
    assert allowed(env_policy(CONTAINERS="1", POST="1"), "DELETE", "/containers/web")
    assert not allowed(
        env_policy(CONTAINERS="1", POST="1", DELETE="0"), "DELETE", "/containers/web"
    )
    p = env_policy(CONTAINERS="1", DELETE="1")
    assert allowed(p, "DELETE", "/containers/web") and not allowed(
        p, "POST", "/containers/web/stop"
    )


def test_exec_needs_exec_not_containers() -> None:
    # Tecnativa lets CONTAINERS=1 POST=1 create execs (/containers/{id}/exec is under /containers)
    assert not allowed(
        env_policy(CONTAINERS="1", POST="1"), "POST", "/containers/web/exec", {"Cmd": ["sh"]}
    )
    assert allowed(env_policy(EXEC="1", POST="1"), "POST", "/containers/web/exec", {"Cmd": ["sh"]})
    privileged = {"Cmd": ["sh"], "Privileged": True}
    assert not allowed(env_policy(EXEC="1", POST="1"), "POST", "/containers/web/exec", privileged)
    assert allowed(
        env_policy(EXEC="1", POST="1", ALLOW_PRIVILEGED="1"),
        "POST",
        "/containers/web/exec",
        privileged,
    )


@pytest.mark.parametrize(
    ("var", "section", "calls"),
    [
        (
            "ALLOW_ARCHIVE",
            "CONTAINERS",
            [("GET", "/containers/web/archive"), ("HEAD", "/containers/web/archive")],
        ),
        ("ALLOW_EXPORT", "CONTAINERS", [("GET", "/containers/web/export")]),
        ("ALLOW_EXPORT", "IMAGES", [("GET", "/images/nginx/get"), ("GET", "/images/get")]),
        ("ALLOW_ATTACH_WS", "CONTAINERS", [("GET", "/containers/web/attach/ws")]),
    ],
)
def test_file_reads_need_their_opt_in(var: str, section: str, calls: list[tuple[str, str]]) -> None:
    for call in calls:
        assert not allowed(env_policy(**{section: "1", "POST": "1"}), *call)
        assert not allowed(env_policy(**{var: "1"}), *call)
        assert allowed(env_policy(**{section: "1", var: "1"}), *call)


def test_put_archive_needs_archive_and_post() -> None:
    call = ("PUT", "/containers/web/archive")
    assert not allowed(env_policy(CONTAINERS="1", POST="1"), *call)
    assert not allowed(env_policy(CONTAINERS="1", ALLOW_ARCHIVE="1"), *call)
    assert allowed(env_policy(CONTAINERS="1", ALLOW_ARCHIVE="1", POST="1"), *call)


@pytest.mark.parametrize(
    ("var", "granted", "not_granted"),
    [
        ("ALLOW_START", ["start"], ["stop", "restart"]),
        ("ALLOW_STOP", ["stop"], ["start", "kill"]),
        ("ALLOW_RESTARTS", ["restart", "stop", "kill"], ["start", "pause"]),
        ("ALLOW_PAUSE", ["pause", "unpause"], ["stop"]),
    ],
)
def test_lifecycle_vars_work_without_post(
    var: str, granted: list[str], not_granted: list[str]
) -> None:
    p = env_policy(**{var: "1", "POST": "0"})
    for action in granted:
        assert allowed(p, "POST", f"/containers/web/{action}"), action
    for action in not_granted:
        assert not allowed(p, "POST", f"/containers/web/{action}"), action
    assert not allowed(p, "GET", "/containers/json")


def test_create_body_opt_ins() -> None:
    base = {"CONTAINERS": "1", "POST": "1"}

    def create(host_config: dict[str, Any], **env: str) -> bool:
        return allowed(
            env_policy(**base, **env),
            "POST",
            "/containers/create",
            {"Image": "x", "HostConfig": host_config},
        )

    assert create({})
    assert not create({"Privileged": True}) and create({"Privileged": True}, ALLOW_PRIVILEGED="1")
    assert not create({"Binds": ["/srv/a:/a"]})
    assert create({"Binds": ["/srv/a:/a"]}, ALLOW_BIND_PREFIXES="/srv, /data")
    assert not create({"Binds": ["/etc:/a"]}, ALLOW_BIND_PREFIXES="/srv,/data")
    assert not create({"NetworkMode": "host"}) and create(
        {"NetworkMode": "host"}, ALLOW_HOST_NAMESPACES="1"
    )
    assert not create({"CapAdd": ["NET_ADMIN"]})
    assert create({"CapAdd": ["NET_ADMIN"]}, ALLOW_CAPABILITIES="NET_ADMIN,SYS_TIME")
    devices = {"Devices": [{"PathOnHost": "/dev/fuse"}]}
    assert not create(devices) and create(devices, ALLOW_DEVICES="1")
    with pytest.raises(PolicyError):
        spec_from_tecnativa_env({"ALLOW_BIND_PREFIXES": "relative/path"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("0", False), ("2", True), ("-1", True), ("00", False), ("", False), (" 1 ", True),
     ("true", True), ("Yes", True), ("on", True), ("false", False), ("no", False), ("x", False)],
)  # fmt: skip
def test_env_flag(value: str, expected: bool) -> None:
    assert env_flag({"X": value}, "X") is expected


def test_redact_env_var() -> None:
    assert env_policy().redact_env
    assert not env_policy(REDACT_ENV="0").redact_env
