"""Class 7: a container has many names. A rule scoped to 'web' works for every way of naming
web and for none of the ways of naming db; exec IDs belong to their container."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import assert_refused, call
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "system.ping", "system.version"]},
    {
        "allow": [
            "containers.inspect",
            "containers.restart",
            "containers.top",
            "exec.create",
            "exec.start",
            "exec.inspect",
        ],
        "containers": {"names": ["web"]},
    },
]


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, named_containers: dict[str, str]) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def _forms(name: str, cid: str) -> list[str]:
    return [cid, cid[:12], cid[:5], name]


@pytest.mark.parametrize("form", range(4), ids=["full-id", "id12", "id5", "name"])
def test_every_name_of_web_works(
    addr: tuple[str, int], named_containers: dict[str, str], form: int
) -> None:
    ref = _forms("web", named_containers["web"])[form]
    r = call(addr, "GET", f"/containers/{ref}/json")
    assert r.status == 200, (ref, r.status, r.body[:200])
    assert r.json()["Id"] == named_containers["web"]


def test_slash_name_of_web_works_or_is_400(
    addr: tuple[str, int], named_containers: dict[str, str]
) -> None:
    r = call(addr, "GET", "/containers/%2Fweb/json")
    assert r.status in (200, 400), r.status
    if r.status == 200:
        assert r.json()["Id"] == named_containers["web"]


@pytest.mark.parametrize("form", range(4), ids=["full-id", "id12", "id5", "name"])
def test_no_name_of_db_works(
    daemon: Daemon, addr: tuple[str, int], named_containers: dict[str, str], form: int
) -> None:
    ref = _forms("db", named_containers["db"])[form]
    assert_refused(call(addr, "GET", f"/containers/{ref}/json"), (403, 404))
    started = (daemon.inspect("db") or {})["State"]["StartedAt"]
    assert_refused(call(addr, "POST", f"/containers/{ref}/restart?t=0"), (403, 404))
    before = daemon.exec_ids("db")
    assert_refused(call(addr, "POST", f"/containers/{ref}/exec", {"Cmd": ["true"]}), (403, 404))
    holds_for(
        lambda: (
            (daemon.inspect("db") or {})["State"]["StartedAt"] == started
            and daemon.exec_ids("db") <= before
        ),
        0.1,
        f"{ref}: db not restarted and no exec instance created on it",
    )


@pytest.mark.parametrize(
    "ref", ["%2Fdb", "db%00", "db%20", "DB", "web%2F..%2Fdb", "web,db", "db?", "*"]
)
def test_odd_spellings_of_db_do_not_work(
    daemon: Daemon, addr: tuple[str, int], named_containers: dict[str, str], ref: str
) -> None:
    r = call(addr, "GET", f"/containers/{ref}/json")
    assert r.status in (400, 403, 404), (ref, r.status)
    if r.status == 200:  # pragma: no cover - documents the failure mode
        assert r.json()["Id"] != named_containers["db"]


def test_lookalike_names_are_not_web(daemon: Daemon, addr: tuple[str, int]) -> None:
    for name in ("web2", "webx", "xweb"):
        daemon.create(name, start=False)
    try:
        for name in ("web2", "webx", "xweb"):
            assert_refused(call(addr, "GET", f"/containers/{name}/json"), (403, 404))
    finally:
        for name in ("web2", "webx", "xweb"):
            daemon.remove(name)


def test_restart_web_by_prefix_restarts_web(
    daemon: Daemon, addr: tuple[str, int], named_containers: dict[str, str]
) -> None:
    started = (daemon.inspect("web") or {})["State"]["StartedAt"]
    r = call(addr, "POST", f"/containers/{named_containers['web'][:12]}/restart?t=0")
    assert r.status == 204, r.body[:200]
    assert (daemon.inspect("web") or {})["State"]["StartedAt"] != started


def _exec_on(daemon: Daemon, ref: str) -> str:
    r = daemon.api("POST", f"/containers/{ref}/exec", {"Cmd": ["echo", "hi"], "AttachStdout": True})
    assert r.status == 201, r.body
    eid: str = r.json()["Id"]
    return eid


def test_exec_of_db_cannot_be_started_or_inspected(daemon: Daemon, addr: tuple[str, int]) -> None:
    eid = _exec_on(daemon, "db")
    start = call(addr, "POST", f"/exec/{eid}/start", {"Detach": True, "Tty": False})
    assert_refused(start, (403, 404))
    assert_refused(call(addr, "GET", f"/exec/{eid}/json"), (403, 404))
    assert_refused(call(addr, "POST", f"/exec/{eid}/resize?h=10&w=10"), (403, 404))

    def never_started() -> bool:
        doc = daemon.api("GET", f"/exec/{eid}/json").json()
        return bool(
            not doc.get("Running")
            and doc.get("ExitCode") in (None, -1, 0)
            and doc.get("Pid", 0) == 0
        )

    holds_for(never_started, 0.2, f"exec {eid} on db never started")


def test_exec_of_db_with_encoded_id_is_refused(daemon: Daemon, addr: tuple[str, int]) -> None:
    eid = _exec_on(daemon, "db")
    for ref in (eid[:12], urllib.parse.quote(eid, safe=""), eid.upper(), f"{eid}%2F"):
        r = call(addr, "POST", f"/exec/{ref}/start", {"Detach": True})
        assert r.status in (400, 403, 404), (ref, r.status)
    holds_for(
        lambda: daemon.api("GET", f"/exec/{eid}/json").json().get("Pid", 0) == 0,
        0.2,
        f"exec {eid} on db never started",
    )


def test_exec_of_web_works(daemon: Daemon, addr: tuple[str, int]) -> None:
    r = call(addr, "POST", "/containers/web/exec", {"Cmd": ["echo", "hi"], "AttachStdout": True})
    assert r.status == 201, r.body[:200]
    eid = r.json()["Id"]
    assert call(addr, "GET", f"/exec/{eid}/json").status == 200
    s = call(addr, "POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False})
    assert s.status == 200, s.body[:200]
    assert b"hi" in s.body
