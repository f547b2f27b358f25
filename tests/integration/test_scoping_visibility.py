"""Visibility: with `visibility.containers` only those containers exist for the client —
lists, events and every per-container call — whatever the rules allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon, LineReader
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import call
from tests.support.waiting import holds_for, settled, wait_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.*", "system.ping", "system.version", "system.events", "exec.*"]},
]
VISIBILITY = {"containers": {"labels": {"team": "ci"}}, "redactEnv": True}


@pytest.fixture(scope="module")
def pair(daemon: Daemon) -> Iterator[dict[str, str]]:
    ids = {
        "vis-ci": daemon.create("vis-ci", labels={"team": "ci"}),
        "vis-other": daemon.create("vis-other", labels={"team": "web"}),
    }
    yield ids
    for n in ids:
        daemon.remove(n)


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, pair: dict[str, str]) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY).addr


def test_list_shows_only_visible(addr: tuple[str, int], pair: dict[str, str]) -> None:
    r = call(addr, "GET", "/containers/json?all=1")
    assert r.status == 200
    ids = {c["Id"] for c in r.json()}
    assert pair["vis-ci"] in ids
    assert pair["vis-other"] not in ids
    assert all((c.get("Labels") or {}).get("team") == "ci" for c in r.json())


def test_list_filters_cannot_widen(addr: tuple[str, int], pair: dict[str, str]) -> None:
    for filt in ({"name": ["vis-other"]}, {"label": ["team=web"]}, {"id": [pair["vis-other"]]}):
        q = json.dumps(filt)
        r = call(addr, "GET", f"/containers/json?all=1&filters={q}")
        assert r.status in (200, 400)
        if r.status == 200:
            assert pair["vis-other"] not in {c["Id"] for c in r.json()}


@pytest.mark.parametrize("ref", ["vis-other", "ID", "ID12"])
def test_invisible_container_does_not_exist(
    daemon: Daemon, addr: tuple[str, int], pair: dict[str, str], ref: str
) -> None:
    cid = pair["vis-other"]
    ref = {"ID": cid, "ID12": cid[:12]}.get(ref, ref)
    r = call(addr, "GET", f"/containers/{ref}/json")
    assert r.status in (403, 404), r.status
    assert cid.encode() not in r.body
    started = (daemon.inspect(cid) or {})["State"]["StartedAt"]
    assert call(addr, "POST", f"/containers/{ref}/restart?t=0").status in (403, 404)
    before = daemon.exec_ids(cid)
    assert call(addr, "POST", f"/containers/{ref}/exec", {"Cmd": ["true"]}).status in (403, 404)
    assert call(addr, "DELETE", f"/containers/{ref}?force=1").status in (403, 404)
    for read in ("logs?stdout=1", "top", "archive?path=/etc/passwd", "export", "changes"):
        r = call(addr, "GET", f"/containers/{ref}/{read}")
        assert r.status in (403, 404), (read, r.status)

    def untouched() -> bool:
        doc = daemon.inspect(cid)
        return (
            doc is not None
            and doc["State"]["StartedAt"] == started
            and daemon.exec_ids(cid) <= before
        )

    holds_for(untouched, 0.1, f"{ref}: not restarted, deleted or exec'd into")


def test_visible_container_can_be_restarted(
    daemon: Daemon, addr: tuple[str, int], pair: dict[str, str]
) -> None:
    before = (daemon.inspect("vis-ci") or {})["State"]["StartedAt"]
    assert call(addr, "POST", "/containers/vis-ci/restart?t=0").status == 204
    assert (daemon.inspect("vis-ci") or {})["State"]["StartedAt"] != before


@pytest.mark.usefixtures("docker_cli_available")
def test_events_hide_invisible_containers(
    daemon: Daemon, proxies: ProxyPool, pair: dict[str, str]
) -> None:
    p = proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY)
    events = LineReader(p.docker_host, "events", "--format", "{{.ID}} {{.Status}}")
    ci_start = f"{pair['vis-ci']} start"

    def restart(name: str) -> None:
        assert daemon.api("POST", f"/containers/{name}/restart", query={"t": "0"}).status == 204

    def ci_starts() -> int:
        return sum(ci_start in line for line in events.drain())

    def probe() -> int:
        restart("vis-ci")
        return ci_starts()

    try:
        # The stream is open before anything happens: a restart of vis-ci shows on it.
        wait_for(probe, 30, "the events stream open (a vis-ci restart shows on it)")
        seen = settled(ci_starts, 0.5, 30, "vis-ci starts from opening the stream")
        restart("vis-other")
        restart("vis-ci")
        wait_for(lambda: ci_starts() > seen, 10, "vis-ci's start after vis-other's restart")
        holds_for(
            lambda: not any(pair["vis-other"] in line for line in events.drain()),
            0.6,
            "no event of vis-other on the stream",
        )
    finally:
        err = events.stop()
    assert not any(pair["vis-other"] in line for line in events.seen), (events.seen, err)


def test_create_of_invisible_container_is_refused(daemon: Daemon, addr: tuple[str, int]) -> None:
    # Creating something the client then could not see would be a blind write: refuse it.
    body = {"Image": daemon.image, "Cmd": ["true"], "Labels": {"team": "web"}}
    r = call(addr, "POST", "/containers/create?name=vis-blind", body)
    try:
        assert r.status in (201, 403)
        if r.status == 201:
            assert call(addr, "GET", "/containers/vis-blind/json").status in (403, 404)
    finally:
        daemon.remove("vis-blind")
