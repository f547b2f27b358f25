"""Class 10: errors in Docker's shape, the audit log, health and metrics endpoints."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, DaemonUnavailable, docker_cli, start_dockerd
from tests.support.proxyproc import ProxyPool, ProxyProcess
from tests.support.rawhttp import assert_blocked, call
from tests.support.waiting import wait_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "containers.inspect", "system.ping", "system.version"]},
]
AUDIT_KEYS = {"client", "method", "path", "operation", "decision", "rule", "status"}


@pytest.mark.usefixtures("docker_cli_available")
def test_docker_cli_shows_blocked_by_policy(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    r = docker_cli(p.docker_host, "run", "--privileged", "--rm", daemon.image, "true")
    assert r.returncode != 0
    assert b"blocked by policy" in r.stderr, r.stderr
    ok = docker_cli(p.docker_host, "ps")
    assert ok.returncode == 0, ok.stderr


def test_403_is_docker_json(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    r = call(p.addr, "POST", "/containers/web/stop")
    assert_blocked(r)
    assert (r.header("Content-Type") or "").startswith("application/json")


def test_400_is_docker_json(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    r = call(p.addr, "GET", "/containers/./json")
    assert r.status == 400
    assert (r.header("Content-Type") or "").startswith("application/json")
    assert r.message


def test_daemon_errors_pass_through(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    r = call(p.addr, "GET", "/containers/does-not-exist-xyz/json")
    assert r.status == 404
    assert r.message


def _assert_unavailable(p: ProxyProcess) -> None:
    r = call(p.addr, "GET", "/containers/json")
    assert r.status in (502, 503), (r.status, r.body[:200])
    assert "Docker daemon unavailable" in r.message, r.message
    ready = p.get("/readyz", base=p.metrics_url)
    assert ready[0] == 503
    assert p.get("/healthz", base=p.metrics_url)[0] == 200


def test_missing_socket_is_503(tmp_path: Path, fresh_proxy: Callable[..., ProxyProcess]) -> None:
    p = fresh_proxy(str(tmp_path / "nothing.sock"), RULES, audit="all")
    _assert_unavailable(p)
    lines = p.wait_audit(lambda x: x.get("status") in (502, 503))
    assert any(x.get("status") in (502, 503) for x in lines), lines


def test_refused_socket_is_503(tmp_path: Path, fresh_proxy: Callable[..., ProxyProcess]) -> None:
    path = str(tmp_path / "refused.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # the file exists, nobody listens: ECONNREFUSED, as after dockerd stops
    _assert_unavailable(fresh_proxy(path, RULES))


def test_daemon_stopped_is_503_and_recovers_nothing_else(
    fresh_proxy: Callable[..., ProxyProcess],
) -> None:
    # A throwaway dockerd of our own: stopping the shared one would break other tests.
    try:
        d = start_dockerd(import_image=False)
    except DaemonUnavailable as e:
        pytest.skip(str(e))
    try:
        p = fresh_proxy(d.socket_path, RULES)
        assert call(p.addr, "GET", "/containers/json").status == 200  # warms the upstream pool
        assert p.get("/readyz", base=p.metrics_url)[0] == 200
        d.stop()
        _assert_unavailable(p)
        assert p.alive()
    finally:
        d.stop()


def test_readyz_fails_when_the_socket_file_is_gone(
    daemon: Daemon, tmp_path: Path, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    link = tmp_path / "d.sock"
    link.symlink_to(daemon.socket_path)
    p = fresh_proxy(str(link), RULES)
    assert p.get("/readyz", base=p.metrics_url)[0] == 200
    assert call(p.addr, "GET", "/_ping").status == 200
    link.unlink()
    # New connections to the path fail now; readiness must say so (kubelet stops routing).
    # (It may lag while pooled upstream connections stay open.)
    wait_for(lambda: p.get("/readyz", base=p.metrics_url)[0] == 503, 10, "/readyz to answer 503")
    link.symlink_to(daemon.socket_path)
    assert p.get("/readyz", base=p.metrics_url)[0] == 200
    assert call(p.addr, "GET", "/_ping").status == 200


def test_audit_lines_say_who_what_which_rule(
    daemon: Daemon, fresh_proxy: Callable[..., ProxyProcess], named_containers: dict[str, str]
) -> None:
    p = fresh_proxy(daemon.socket_path, RULES, audit="all")
    assert call(p.addr, "GET", "/containers/json").status == 200
    assert call(p.addr, "POST", "/containers/web/stop").status == 403
    assert call(p.addr, "GET", "/containers/./json").status == 400
    lines = p.wait_audit(lambda x: x.get("status") == 400)
    assert len(lines) >= 3, lines
    for line in lines:
        assert set(line) >= AUDIT_KEYS, line
    allowed = next(x for x in lines if x["status"] == 200)
    assert allowed["method"] == "GET" and allowed["operation"] == "containers.list"
    assert allowed["decision"].startswith("allow") and "rules[0]" in allowed["rule"]
    assert allowed["client"].startswith("127.0.0.1")
    denied = next(x for x in lines if x["status"] == 403)
    assert denied["method"] == "POST" and denied["path"].startswith("/containers/web/stop")
    assert denied["operation"] == "containers.stop"
    assert denied["decision"].startswith("den")
    assert denied["rule"]


def test_audit_denied_mode_logs_only_denials(
    daemon: Daemon, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    p = fresh_proxy(daemon.socket_path, RULES, audit="denied")
    assert call(p.addr, "GET", "/_ping").status == 200
    assert call(p.addr, "POST", "/containers/web/kill").status == 403
    lines = p.wait_audit(lambda x: x.get("status") == 403)
    assert [x["status"] for x in lines] == [403], lines


def test_metrics_and_healthz(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    call(p.addr, "POST", "/containers/web/stop")
    status, body = p.get("/metrics", base=p.metrics_url)
    assert status == 200
    text = body.decode()
    assert "# TYPE" in text
    assert any(
        line and not line.startswith("#") and "deny" in line for line in text.splitlines()
    ), text[:2000]
    assert p.get("/healthz", base=p.metrics_url)[0] == 200
    assert p.get("/readyz", base=p.metrics_url)[0] == 200


def test_metrics_not_on_the_api_port(daemon: Daemon, proxies: ProxyPool) -> None:
    # The API port speaks the Docker API only: /metrics there is an unknown route.
    p = proxies.get(daemon.socket_path, RULES)
    r = call(p.addr, "GET", "/metrics")
    assert r.status in (403, 404)
