"""Reading a Tecnativa environment as a person switching from Tecnativa expects: values read as
HAProxy's `-m bool` reads them (and said so at start when they are not), misspelt and foreign
variables reported, and the listen addresses of Tecnativa's image."""

from __future__ import annotations

import pytest

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.cli import DEFAULT_LISTEN, DEFAULT_LISTEN_IPV6, default_listen
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.tecnativa import (
    KNOWN_VARS,
    env_flag,
    env_warnings,
    flags_on,
    spec_from_tecnativa_env,
)
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts
from docker_socket_operator.proxy.reload import load_from_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # HAProxy's read_int64: sign, leading digits, the rest ignored.
        ("1 # traefik", True), ("1.0", True), ("10abc", True), ("+1", True), ("-1", True),
        ("0.5", False), ("0x1", False), ("0 ", False), ("-0", False), ("+", False),
        # Ours on purpose (HAProxy: off), reported by env_warnings.
        ("true", True), (" 1", True), ("\t1\n", True),
    ],
)  # fmt: skip
def test_env_flag_reads_leading_integer_as_haproxy(value: str, expected: bool) -> None:
    assert env_flag({"X": value}, "X") is expected


def test_leading_integer_opens_the_section() -> None:
    """`CONTAINERS=1 # for traefik` in a --env-file: Tecnativa opened containers, so do we."""
    spec = spec_from_tecnativa_env({"CONTAINERS": "1 # for traefik"})
    assert "containers.list" in spec.rules[0].allow


def test_clean_environment_has_no_warnings() -> None:
    env = {
        "CONTAINERS": "1", "POST": "0", "EVENTS": "1", "PING": "1", "VERSION": "1",
        "ALLOW_RESTARTS": "1", "LOG_LEVEL": "info", "SOCKET_PATH": "/var/run/docker.sock",
        "DISABLE_IPV6": "0", "ALLOW_BIND_PREFIXES": "/srv", "ALLOW_CAPABILITIES": "NET_ADMIN",
        "DELETE": "false", "REDACT_ENV": "", "INFO": "off",
        # What a container's environment carries besides.
        "PATH": "/usr/bin", "HOME": "/", "HOSTNAME": "abc", "LANG": "C.UTF-8", "TERM": "xterm",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "container": "podman",
        "CONTAINER_ID": "x", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "TZ": "UTC",
    }  # fmt: skip
    assert env_warnings(env) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POST": "true"}, "POST='true' is read as on (Tecnativa read it as off); write POST=1"),
        ({"INFO": " 1"}, "INFO=' 1' is read as on (Tecnativa read it as off); write INFO=1"),
        ({"EVENTS": "yes"}, "EVENTS='yes' is read as on (Tecnativa read it as off)"),
        ({"IMAGES": "1 # x"}, "IMAGES='1 # x' is read as on; write IMAGES=0 or IMAGES=1"),
        ({"PING": "enable"}, "PING='enable' is read as off; write PING=0 or PING=1"),
        ({"DISABLE_IPV6": "on"}, "DISABLE_IPV6='on' is read as on (Tecnativa read it as off)"),
        ({"CONTAINER": "1"}, "CONTAINER is not a variable of this proxy and is ignored; did you mean CONTAINERS?"),
        ({"ALLOW_RESTART": "1"}, "did you mean ALLOW_RESTARTS?"),
        ({"NETWORK": "1"}, "did you mean NETWORKS?"),
        ({"LOGLEVEL": "info"}, "did you mean LOG_LEVEL?"),
        ({"containers": "1"}, "containers is ignored: variable names are upper case (CONTAINERS)"),
        ({"PUT": "1"}, "PUT is not a variable of this proxy and is ignored: POST=1 opens PUT"),
        ({"ALLOW_LOGS": "0"}, "ALLOW_LOGS is not a variable of this proxy and is ignored"),
        ({"ALLOW_EVERYTHING": "1"}, "ALLOW_EVERYTHING is not a variable of this proxy"),
    ],
)  # fmt: skip
def test_warnings_name_the_variable(env: dict[str, str], expected: str) -> None:
    warnings = env_warnings(env)
    assert len(warnings) == 1 and expected in warnings[0], warnings


def test_every_documented_variable_is_known() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "tecnativa.md").read_text()
    for name in KNOWN_VARS:
        assert f"`{name}`" in doc, name


def test_flags_on_lists_defaults_and_set_flags() -> None:
    assert flags_on({}) == ["EVENTS", "PING", "REDACT_ENV", "VERSION"]
    assert flags_on({"CONTAINERS": "1", "PING": "0", "REDACT_ENV": "0"}) == [
        "CONTAINERS",
        "EVENTS",
        "VERSION",
    ]


@pytest.mark.parametrize(
    ("env", "env_mode", "expected"),
    [
        ({}, True, [DEFAULT_LISTEN, DEFAULT_LISTEN_IPV6]),  # Tecnativa: [::]:2375 v4v6
        ({"DISABLE_IPV6": "1"}, True, [DEFAULT_LISTEN]),
        ({"DISABLE_IPV6": "true"}, True, [DEFAULT_LISTEN]),
        ({"DISABLE_IPV6": "0"}, True, [DEFAULT_LISTEN, DEFAULT_LISTEN_IPV6]),
        ({}, False, [DEFAULT_LISTEN]),  # --policy: unchanged
    ],
)
def test_default_listen(env: dict[str, str], env_mode: bool, expected: list[str]) -> None:
    assert default_listen(env, env_mode=env_mode) == expected


@pytest.mark.parametrize(
    ("env", "method", "path", "hint"),
    [
        ({}, "GET", "/containers/json", "env mode: set CONTAINERS=1)"),
        ({"CONTAINERS": "1"}, "POST", "/containers/c1/exec", "env mode: set EXEC=1 POST=1)"),
        ({"CONTAINERS": "1"}, "POST", "/containers/c1/restart", "POST=1, or ALLOW_RESTARTS=1)"),
        ({"CONTAINERS": "1", "POST": "1", "DELETE": "0"}, "DELETE", "/containers/c1",
         "env mode: set CONTAINERS=1 DELETE=1)"),
        ({"CONTAINERS": "1"}, "GET", "/containers/c1/export", "CONTAINERS=1 ALLOW_EXPORT=1)"),
        ({"PLUGINS": "1", "POST": "1"}, "POST", "/plugins/pull",
         "PLUGINS=1 POST=1 ALLOW_PRIVILEGED=1)"),
    ],
)  # fmt: skip
def test_a_refusal_says_which_variables_open_it(
    env: dict[str, str], method: str, path: str, hint: str
) -> None:
    policy, _ = load_from_env(env)
    matched = match_operation(method, path)
    assert matched is not None
    d = decide(
        policy,
        RequestFacts(method=method, api_path=path, op=matched.op, params=matched.params,
                     container=ContainerFacts(id="c" * 64, name="c1")),
    )  # fmt: skip
    assert not d.allow
    assert d.reason.endswith(hint), d.reason
    # Following the hint opens it.
    opened = dict(env)
    for word in hint.removesuffix(")").replace(",", " ").split():
        if "=" in word:
            opened[word.split("=")[0]] = "1"
    again = decide(
        load_from_env(opened)[0],
        RequestFacts(method=method, api_path=path, op=matched.op, params=matched.params,
                     container=ContainerFacts(id="c" * 64, name="c1")),
    )  # fmt: skip
    assert again.allow, (opened, again.reason)
