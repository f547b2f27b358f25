"""Inspect by name under label visibility: the proxy decides on the very inspect answer it
relays, so a name that now points at another container is decided on that container (a name
is never remembered), with and without a query (the query form inspects twice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import call

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [{"allow": ["containers.inspect", "containers.list"]}]
VISIBILITY = {"containers": {"labels": {"team": "ci"}}}


@pytest.fixture
def pair(daemon: Daemon) -> Iterator[dict[str, str]]:
    ids = {
        "visible": daemon.create("scoped-seen", labels={"team": "ci"}, start=False),
        "hidden": daemon.create("scoped-unseen", labels={"team": "web"}, start=False),
    }
    yield ids
    for cid in ids.values():
        daemon.remove(cid)


@pytest.mark.parametrize("query", ["", "?size=0"])
def test_a_renamed_name_is_decided_on_the_container_it_names_now(
    daemon: Daemon, proxies: ProxyPool, pair: dict[str, str], query: str
) -> None:
    addr = proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY).addr
    r = call(addr, "GET", f"/containers/scoped-seen/json{query}")
    assert r.status == 200, r.body
    assert r.json()["Id"] == pair["visible"]
    assert call(addr, "GET", f"/containers/scoped-unseen/json{query}").status in (403, 404)

    # The names swap on the daemon behind the proxy's back.
    assert daemon.api("POST", "/containers/scoped-seen/rename?name=scoped-tmp").status == 204
    assert daemon.api("POST", "/containers/scoped-unseen/rename?name=scoped-seen").status == 204
    assert daemon.api("POST", "/containers/scoped-tmp/rename?name=scoped-unseen").status == 204

    r = call(addr, "GET", f"/containers/scoped-seen/json{query}")
    assert r.status in (403, 404), r.status
    assert pair["hidden"].encode() not in r.body
    r = call(addr, "GET", f"/containers/scoped-unseen/json{query}")
    assert r.status == 200, r.body
    assert r.json()["Id"] == pair["visible"]
