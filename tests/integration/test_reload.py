"""Policy reload: a changed file (or a Kubernetes-style `..data` symlink swap) takes effect
within ~2 s without dropping open streams; an invalid new file keeps the old policy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyProcess, policy_document
from tests.support.rawhttp import RawConnection, call, request_bytes, wait_status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.docker

BASE = ["containers.list", "system.ping", "system.version", "system.events"]
V1: list[dict[str, Any]] = [{"allow": BASE}]
V2: list[dict[str, Any]] = [{"allow": [*BASE, "containers.inspect"]}]


def _open_events(p: ProxyProcess) -> RawConnection:
    c = RawConnection(*p.addr, timeout=15)
    c.send(request_bytes("GET", '/events?filters={"container":["reload-evt"]}'))
    head = c._read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return c


def _event_seen(c: RawConnection, daemon: Daemon) -> bool:
    assert daemon.api("POST", "/containers/reload-evt/restart", query={"t": "0"}).status == 204
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if b'"restart"' in c.buf or b'"start"' in c.buf:
            return True
        if not c._fill():
            return False
    return False


def test_file_change_applies_and_streams_survive(
    dockerd: Daemon, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    dockerd.create("reload-evt")
    p = fresh_proxy(dockerd.socket_path, V1)
    assert call(p.addr, "GET", "/containers/reload-evt/json").status == 403
    events = _open_events(p)
    try:
        p.write_policy(policy_document(V2))
        wait_status(p.addr, "/containers/reload-evt/json", 200, timeout=3.0)  # within ~2 s
        assert _event_seen(events, dockerd), "events stream dropped by the reload"
        # And back: a narrowing reload applies as well.
        p.write_policy(policy_document(V1))
        wait_status(p.addr, "/containers/reload-evt/json", 403)
    finally:
        events.close()
        dockerd.remove("reload-evt")


def test_symlink_swap_like_configmap(
    dockerd: Daemon, tmp_path: Path, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    # kubelet's layout: policy.yaml -> ..data/policy.yaml, ..data -> ..2024_v1 (swapped atomically)
    mount = tmp_path / "cm"
    mount.mkdir()

    def version(name: str, rules: list[dict[str, Any]]) -> None:
        d = mount / name
        d.mkdir()
        (d / "policy.yaml").write_text(yaml.safe_dump(policy_document(rules)))

    version("..v1", V1)
    (mount / "..data").symlink_to("..v1")
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    proxy = fresh_proxy(dockerd.socket_path, policy_path=mount / "policy.yaml")
    assert call(proxy.addr, "GET", "/containers/web-nonexistent/json").status == 403
    version("..v2", V2)
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to("..v2")
    os.replace(tmp_link, mount / "..data")
    wait_status(proxy.addr, "/containers/web-nonexistent/json", 404, timeout=3.0)  # within ~2 s


@pytest.mark.parametrize(
    "bad",
    [
        "{{{ not yaml",
        "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\nspec:\n  rules:\n  - allow: [no.such-op]\n",
        "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\nspec:\n  rules:\n  - allow: [containers.*]\n    deny: [containers.delete]\n",
        "apiVersion: dockersocket.io/v1alpha1\nkind: DockerSocketPolicy\nspec:\n  rulez: []\n",
    ],
    ids=["garbage", "unknown-op", "allow-and-deny", "typo-field"],
)
def test_invalid_file_keeps_old_policy(
    dockerd: Daemon, fresh_proxy: Callable[..., ProxyProcess], bad: str
) -> None:
    p = fresh_proxy(dockerd.socket_path, V2)
    assert call(p.addr, "GET", "/containers/nope/json").status == 404
    p.write_policy(bad)
    wait_for(lambda: "policy reload failed" in p.stderr_text(), 10, "the reload failure logged")
    assert p.alive(), p.stderr_text()[-2000:]
    assert call(p.addr, "GET", "/containers/nope/json").status == 404
    assert call(p.addr, "GET", "/containers/json").status == 200
    assert call(p.addr, "POST", "/containers/web/stop").status == 403
    assert "reload" in p.stderr_text().lower()


def test_a_kept_rewrite_follows_the_reloaded_policy(
    dockerd: Daemon, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    """The proxy keeps its rewrite of an answer for the same bytes (proxy/answers.py): the
    daemon answers a poller's list with the same bytes, but a reloaded policy rewrites them
    anew."""
    ids = {
        team: dockerd.create(f"reload-{team}", labels={"team": team}, start=False)
        for team in ("ci", "web")
    }
    rules: list[dict[str, Any]] = [{"allow": ["containers.list"]}]

    def listed() -> set[str]:
        r = call(p.addr, "GET", "/containers/json?all=1")
        assert r.status == 200, r.body
        return {c["Id"] for c in r.json()} & set(ids.values())

    def visibility(team: str) -> dict[str, Any]:
        return policy_document(rules, visibility={"containers": {"labels": {"team": team}}})

    p = fresh_proxy(dockerd.socket_path, rules, visibility=visibility("ci")["spec"]["visibility"])
    try:
        for _ in range(3):  # the same bytes each time: kept after the first
            assert listed() == {ids["ci"]}
        p.write_policy(visibility("web"))
        wait_for(lambda: listed() == {ids["web"]}, timeout=5.0, what="the reload to apply")
        assert listed() == {ids["web"]}
    finally:
        for cid in ids.values():
            dockerd.remove(cid)
