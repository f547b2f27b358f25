"""Class 2: one canonical path. Percent-encoding, dot segments, '//', trailing '/', %2F and
version prefixes either reach the operation they spell (after cleaning) or get a 400; they
never reach an operation the policy does not allow."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import RawResponse, assert_refused, call
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "containers.inspect", "system.ping", "system.version"]},
    {"allow": ["containers.restart"], "containers": {"names": ["web"]}},
]


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, named_containers: dict[str, str]) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def _is_list(r: RawResponse) -> bool:
    return r.status == 200 and isinstance(r.json(), list)


@pytest.mark.parametrize(
    "target",
    [
        "/containers/json",
        "/v1.41/containers/json",
        "/%63ontainers/json",
        "/containers/%6Ason",
        "/containers/./json",
        "//containers/json",
        "/containers//json",
        "/containers/json/",
        "/containers/foo/../json",
        "/v1.41/./containers/json",
    ],
)
def test_spellings_of_list_are_list_or_400(addr: tuple[str, int], target: str) -> None:
    r = call(addr, "GET", target)
    assert r.status == 400 or _is_list(r), (target, r.status, r.body[:200])
    if r.status == 400:
        assert r.message, "400 without Docker's JSON error shape"


@pytest.mark.parametrize(
    "target",
    [
        "/containers/web/%65xec",
        "/containers/web/./exec",
        "/containers/web//exec",
        "/containers/web/exec/",
        "/containers/web/exec/.",
        "/containers%2Fweb%2Fexec",
        "/containers/web%2Fexec",
        "/containers/web%2fexec",
        "/containers/web/json%00/../exec",
        "/containers/web/json%2500/../exec",
        "/v1.41/../containers/web/exec",
        "/v1.41//containers/web/exec",
        "/%761.41/containers/web/exec",
        "/v1.41/v1.41/containers/web/exec",
        "/containers/web/exec%3Fx=1",
        "/containers/web/exec;x=1",
        "/containers/web/exec#frag",
        "/containers/web/exec\\",
        "http://docker/containers/web/exec",
        "*",
    ],
)
def test_encoded_exec_create_never_creates(
    daemon: Daemon, addr: tuple[str, int], target: str
) -> None:
    before = daemon.exec_ids("web")
    r = call(addr, "POST", target, {"Cmd": ["id"], "AttachStdout": True})
    assert_refused(r, (400, 403, 404))
    holds_for(lambda: daemon.exec_ids("web") <= before, 0.1, f"{target} created no exec instance")


@pytest.mark.parametrize(
    "target",
    [
        "/containers/web/../db/restart",
        "/containers/web/%2E%2E/db/restart",
        "/containers/web%2F..%2Fdb/restart",
        "/containers/db%2Fweb/restart",
        "/containers/web/json/../../db/restart",
        "/containers/./db/restart",
    ],
)
def test_scoped_restart_cannot_be_redirected(
    daemon: Daemon, addr: tuple[str, int], target: str
) -> None:
    started = (daemon.inspect("db") or {})["State"]["StartedAt"]
    r = call(addr, "POST", target + "?t=0")
    assert_refused(r, (400, 403, 404))
    holds_for(
        lambda: (daemon.inspect("db") or {})["State"]["StartedAt"] == started,
        0.1,
        f"{target} did not restart db",
    )


def test_scoped_restart_works_for_the_named_container(
    daemon: Daemon, addr: tuple[str, int]
) -> None:
    started = (daemon.inspect("web") or {})["State"]["StartedAt"]
    r = call(addr, "POST", "/v1.41/containers/web/restart?t=0")
    assert r.status == 204, r.body[:300]
    assert (daemon.inspect("web") or {})["State"]["StartedAt"] != started


@pytest.mark.parametrize("prefix", ["", "/v1.41", "/v1.24", "/v1.44"])
def test_version_prefixes_reach_the_same_operation(
    addr: tuple[str, int], named_containers: dict[str, str], prefix: str
) -> None:
    r = call(addr, "GET", f"{prefix}/containers/web/json")
    # dockerd refuses a version above its own (400); otherwise this is the inspect.
    assert r.status in (200, 400), r.body[:200]
    if r.status == 200:
        assert r.json()["Id"] == named_containers["web"]


@pytest.mark.parametrize("prefix", ["/v1", "/v1.41.0", "/vX", "/v1.41a", "/V1.41"])
def test_odd_version_prefixes_are_not_a_side_door(
    daemon: Daemon, addr: tuple[str, int], prefix: str
) -> None:
    before = daemon.exec_ids("web")
    r = call(addr, "POST", f"{prefix}/containers/web/exec", {"Cmd": ["id"]})
    assert_refused(r, (400, 403, 404))
    holds_for(lambda: daemon.exec_ids("web") <= before, 0.1, f"{prefix} created no exec instance")


def test_query_string_is_not_part_of_the_route(addr: tuple[str, int]) -> None:
    r = call(addr, "GET", "/containers/json?x=/../../exec&all=1")
    assert _is_list(r)
