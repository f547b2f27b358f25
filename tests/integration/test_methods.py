"""Class 3: the method decided is the method dockerd sees. HEAD is not a free pass,
override headers are not honoured, odd or lowercase methods do not slip through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import (
    RawConnection,
    assert_blocked,
    assert_refused,
    call,
    json_request,
    request_bytes,
)
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "system.ping", "system.version"]},
]
REFUSALS = (400, 403, 405, 501)


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, named_containers: dict[str, str]) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def test_head_ping_is_allowed_with_ping(addr: tuple[str, int]) -> None:
    assert call(addr, "HEAD", "/_ping").status == 200


@pytest.mark.parametrize(
    "target",
    [
        "/containers/web/json",
        "/containers/web/archive?path=/etc/passwd",
        "/containers/web/export",
        "/images/json",
        "/info",
    ],
)
def test_head_on_unallowed_get_is_denied(addr: tuple[str, int], target: str) -> None:
    r = call(addr, "HEAD", target)
    assert r.status in REFUSALS, r.status
    # A HEAD answer has no body: the 403 still names the policy in its headers' status only.
    assert r.status != 200


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_do_not_turn_get_into_post(
    daemon: Daemon, addr: tuple[str, int], header: str
) -> None:
    before = daemon.exec_ids("web")
    body = b'{"Cmd":["id"]}'
    data = request_bytes(
        "GET",
        "/containers/web/exec",
        headers={header: "POST", "Content-Type": "application/json"},
        body=body,
    )
    with RawConnection(*addr) as c:
        c.send(data)
        r = c.read_response()
    assert r.status in (*REFUSALS, 404), r.status
    holds_for(lambda: daemon.exec_ids("web") <= before, 0.1, "no exec instance created on web")


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_do_not_turn_post_into_get(
    daemon: Daemon, addr: tuple[str, int], header: str
) -> None:
    body = {"Image": daemon.image, "Cmd": ["true"], "HostConfig": {"Privileged": True}}
    r = call(addr, "POST", "/containers/create?name=override", body, headers={header: "GET"})
    assert r.status in REFUSALS
    holds_for(lambda: daemon.inspect("override") is None, 0.1, "no container override created")


@pytest.mark.parametrize("method", ["post", "Post", "pOST"])
def test_lowercase_method_does_not_create(
    daemon: Daemon, addr: tuple[str, int], method: str
) -> None:
    body = {"Image": daemon.image, "Cmd": ["true"], "HostConfig": {"Privileged": True}}
    data = json_request(method, "/containers/create?name=lowercase", body)
    with RawConnection(*addr) as c:
        c.send(data)
        rs = c.read_responses(1)
    if rs:
        assert rs[0].status in (*REFUSALS, 404), rs[0].status
    holds_for(
        lambda: daemon.inspect("lowercase") is None and daemon.privileged_containers() == [],
        0.1,
        "no container created (lowercase, or any privileged one)",
    )


@pytest.mark.parametrize(
    "method,target",
    [
        ("PATCH", "/containers/web/update"),
        ("PUT", "/containers/web/archive?path=/tmp"),
        ("PROPFIND", "/containers/json"),
        ("TRACE", "/containers/json"),
        ("OPTIONS", "/containers/json"),
        ("CONNECT", "127.0.0.1:2375"),
        ("GETS", "/containers/json"),
        ("G\x00ET", "/containers/json"),
    ],
)
def test_unknown_methods_are_refused(addr: tuple[str, int], method: str, target: str) -> None:
    with RawConnection(*addr) as c:
        c.send(request_bytes(method, target))
        rs = c.read_responses(1)
    # Refused with an error, or the connection closed: never a 2xx.
    if rs:
        assert rs[0].status in (*REFUSALS, 404), rs[0].status


def test_delete_with_get_rules_is_blocked(daemon: Daemon, addr: tuple[str, int]) -> None:
    r = call(addr, "DELETE", "/containers/db?force=1")
    assert_blocked(r)
    assert daemon.inspect("db") is not None


def test_get_on_a_post_route_does_not_run_it(daemon: Daemon, addr: tuple[str, int]) -> None:
    started = (daemon.inspect("db") or {})["State"]["StartedAt"]
    r = call(addr, "GET", "/containers/db/restart")
    assert_refused(r, (*REFUSALS, 404))
    assert (daemon.inspect("db") or {})["State"]["StartedAt"] == started
