"""Podman: the Docker-compatible API through the proxy, and the libpod API (denied unless a
rule names the route as "libpod:METHOD /libpod/glob")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import assert_blocked, assert_refused, call
from tests.support.waiting import holds_for

pytestmark = pytest.mark.podman

RULES: list[dict[str, Any]] = [
    {"preset": "read-only"},
    {"allow": ["libpod:GET /libpod/containers/json", "libpod:GET /libpod/_ping"]},
]


@pytest.fixture(scope="module")
def pod_ctr(podman: Daemon) -> str:
    return podman.create("pod-web")


@pytest.fixture
def addr(podman: Daemon, proxies: ProxyPool, pod_ctr: str) -> tuple[str, int]:
    return proxies.get(podman.socket_path, RULES).addr


@pytest.mark.parametrize("prefix", ["/v4.0.0", "/v4.3.1", "/v1.41"])
def test_named_libpod_route_allowed(addr: tuple[str, int], pod_ctr: str, prefix: str) -> None:
    r = call(addr, "GET", f"{prefix}/libpod/containers/json?all=true")
    assert r.status == 200, r.body[:300]
    assert pod_ctr in {c["Id"] for c in r.json()}


@pytest.mark.parametrize(
    "method,target",
    [
        ("GET", "/v4.0.0/libpod/info"),
        ("GET", "/v4.0.0/libpod/containers/pod-web/json"),
        ("POST", "/v4.0.0/libpod/containers/pod-web/stop"),
        ("POST", "/v4.0.0/libpod/containers/pod-web/exec"),
        ("GET", "/v4.0.0/libpod/containers/pod-web/archive?path=/etc"),
        ("GET", "/v4.0.0/libpod/containers/pod-web/export"),
        ("POST", "/v4.0.0/libpod/system/prune"),
        ("GET", "/v4.0.0/libpod/containers/json/../pod-web/json"),
        ("GET", "/v4.0.0/libpod/containers/json/"),
        ("GET", "/v4.0.0/libpod//containers/json"),
    ],
)
def test_unnamed_libpod_routes_denied(addr: tuple[str, int], method: str, target: str) -> None:
    assert_refused(call(addr, method, target))


def test_libpod_privileged_create_denied(podman: Daemon, addr: tuple[str, int]) -> None:
    spec = {"name": "pod-priv", "image": podman.image, "command": ["true"], "privileged": True}
    assert_blocked(call(addr, "POST", "/v4.0.0/libpod/containers/create", spec))
    holds_for(lambda: podman.inspect("pod-priv") is None, 0.2, "no container pod-priv created")


def test_libpod_exec_denied_leaves_no_exec(podman: Daemon, addr: tuple[str, int]) -> None:
    before = podman.exec_ids("pod-web")
    r = call(addr, "POST", "/v4.0.0/libpod/containers/pod-web/exec", {"Cmd": ["id"]})
    assert_blocked(r)
    assert podman.exec_ids("pod-web") <= before


@pytest.mark.usefixtures("docker_cli_available")
def test_docker_cli_against_podman(podman: Daemon, proxies: ProxyPool, pod_ctr: str) -> None:
    p = proxies.get(podman.socket_path, RULES)
    ps = docker_cli(p.docker_host, "ps", "--format", "{{.Names}}")
    assert ps.returncode == 0 and b"pod-web" in ps.stdout, ps.stderr
    stop = docker_cli(p.docker_host, "stop", "pod-web")
    assert stop.returncode != 0 and b"blocked by policy" in stop.stderr
    assert (podman.inspect("pod-web") or {})["State"]["Running"]
