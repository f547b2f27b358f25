"""Class 1: routing by operation, not by prefix. Unknown routes are denied; a path that
starts like an allowed section never reaches a different operation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool, proxy_command
from tests.support.rawhttp import assert_blocked, assert_refused, call
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "containers.inspect", "system.ping", "system.version"]},
    {"allow": ["libpod:GET /libpod/info"]},
]
PRIVILEGED: dict[str, Any] = {"Cmd": ["true"], "HostConfig": {"Privileged": True}}


@pytest.fixture
def proxy_addr(
    daemon: Daemon, proxies: ProxyPool, named_containers: dict[str, str]
) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def test_allowed_operations_pass(
    proxy_addr: tuple[str, int], named_containers: dict[str, str]
) -> None:
    r = call(proxy_addr, "GET", "/containers/json")
    assert r.status == 200
    assert named_containers["web"] in {c["Id"] for c in r.json()}
    r = call(proxy_addr, "GET", "/v1.41/containers/web/json")
    assert r.status == 200 and r.json()["Id"] == named_containers["web"]
    assert call(proxy_addr, "GET", "/_ping").body == b"OK"


@pytest.mark.parametrize(
    "method,target",
    [
        ("GET", "/info"),
        ("GET", "/nonexistent"),
        ("GET", "/containers/json/extra"),
        ("GET", "/containers/web/json/extra"),
        ("GET", "/containersjson"),
        ("GET", "/images/json"),
        ("POST", "/containers/web/json"),
        ("DELETE", "/containers/web/json"),
        ("GET", "/"),
        ("GET", "/v1.41"),
        ("GET", "/v1.41/"),
    ],
)
def test_unknown_or_unlisted_routes_denied(
    proxy_addr: tuple[str, int], method: str, target: str
) -> None:
    r = call(proxy_addr, method, target)
    assert_refused(r)
    if r.status == 403:
        assert_blocked(r)


@pytest.mark.parametrize(
    "target",
    [
        "/containers/json/../../containers/web/exec",
        "/containers/json/../web/exec",
        "/containers/web/json/../exec",
        "/containers/web/json/..%2Fexec",
        "/containers/web/json/%2E%2E/exec",
        "/containers/web/json%2F..%2F..%2Fweb%2Fexec",
        "/_ping/../containers/web/exec",
        "/v1.41/containers/json/../web/exec",
    ],
)
def test_section_prefix_tricks_do_not_reach_exec(
    daemon: Daemon, proxy_addr: tuple[str, int], named_containers: dict[str, str], target: str
) -> None:
    before = daemon.exec_ids("web")
    r = call(proxy_addr, "POST", target, {"Cmd": ["id"], "Privileged": True})
    assert_refused(r)
    holds_for(
        lambda: daemon.exec_ids("web") <= before, 0.1, "no exec instance created through the proxy"
    )


@pytest.mark.parametrize(
    "target",
    [
        "/containers/create?name=route-create",
        "/containers/json/../create?name=route-create",
        "/v1.41/containers/json/../create?name=route-create",
        "/containers/web/json/../../create?name=route-create",
    ],
)
def test_create_not_reachable_from_read_rules(
    daemon: Daemon, proxy_addr: tuple[str, int], target: str
) -> None:
    r = call(proxy_addr, "POST", target, {"Image": daemon.image, **PRIVILEGED})
    assert_refused(r)
    holds_for(
        lambda: daemon.inspect("route-create") is None and daemon.privileged_containers() == [],
        0.1,
        "no container created (route-create, or any privileged one)",
    )


@pytest.mark.parametrize(
    "target",
    [
        "/libpod/containers/json",
        "/v4.0.0/libpod/containers/json",
        "/v4.0.0/libpod/_ping",
        "/v1.41/libpod/containers/json",
        "/libpod/../containers/json/../../libpod/containers/json",
    ],
)
def test_libpod_routes_denied_unless_named(proxy_addr: tuple[str, int], target: str) -> None:
    assert_refused(call(proxy_addr, "GET", target))


def test_libpod_route_named_in_a_rule_is_allowed(
    daemon: Daemon, proxy_addr: tuple[str, int]
) -> None:
    r = call(proxy_addr, "GET", "/v4.0.0/libpod/info")
    if daemon.kind == "podman":
        assert r.status == 200, r.body[:300]
        assert "host" in r.json()
    else:
        # dockerd has no libpod API: the proxy lets it through and dockerd answers 404.
        assert r.status == 404, r.body[:300]


def test_libpod_create_is_denied(daemon: Daemon, proxy_addr: tuple[str, int]) -> None:
    body = {"name": "route-libpod", "image": daemon.image, "command": ["true"], "privileged": True}
    assert_refused(call(proxy_addr, "POST", "/v4.0.0/libpod/containers/create", body))
    holds_for(lambda: daemon.inspect("route-libpod") is None, 0.1, "no container route-libpod")


CHECK_CASES = [
    ("GET", "/containers/json", None),
    ("GET", "/v1.41/containers/web/json", None),
    ("GET", "/info", None),
    ("POST", "/containers/web/exec", {"Cmd": ["id"]}),
    ("POST", "/containers/create", {"Image": "bb:latest"}),
    ("GET", "/v4.0.0/libpod/info", None),
    ("GET", "/v4.0.0/libpod/containers/json", None),
]


@pytest.mark.parametrize("method,target,body", CHECK_CASES)
def test_check_cli_agrees_with_the_proxy(
    dockerd: Daemon,
    proxies: ProxyPool,
    tmp_path: Path,
    method: str,
    target: str,
    body: Any,
) -> None:
    p = proxies.get(dockerd.socket_path, RULES)
    assert p.policy_path is not None
    args = [*proxy_command(), "check", "-f", str(p.policy_path), method, target, "--json"]
    if body is not None:
        (tmp_path / "body.json").write_text(json.dumps(body))
        args += ["--body", str(tmp_path / "body.json")]
    verdict = subprocess.run(args, capture_output=True, timeout=30, check=False)
    assert verdict.returncode in (0, 1), verdict.stderr
    assert json.loads(verdict.stdout)["decision"] == (
        "allow" if verdict.returncode == 0 else "deny"
    )
    r = call(p.addr, method, target, body)
    assert (r.status == 403) == (verdict.returncode == 1), (r.status, verdict.stdout)
