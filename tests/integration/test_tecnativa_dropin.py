"""Tecnativa docker-socket-proxy drop-in: no policy file, the same environment variables,
the same answers (plus the host-power checks Tecnativa never had)."""

from __future__ import annotations

import pytest

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import assert_blocked, call

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cli_available")]


@pytest.fixture(scope="module")
def target(dockerd: Daemon) -> str:
    cid = dockerd.create("tecna")
    return cid


def test_defaults_ping_version_events_only(
    dockerd: Daemon, proxies: ProxyPool, target: str
) -> None:
    p = proxies.get(dockerd.socket_path, env={})
    assert call(p.addr, "GET", "/_ping").status == 200
    assert call(p.addr, "GET", "/version").status == 200
    assert_blocked(call(p.addr, "GET", "/containers/json"))
    assert_blocked(call(p.addr, "GET", "/info"))
    ev = call(p.addr, "GET", "/events?since=0&until=1")
    assert ev.status == 200


def test_containers_read_only(dockerd: Daemon, proxies: ProxyPool, target: str) -> None:
    p = proxies.get(dockerd.socket_path, env={"CONTAINERS": "1"})
    ps = docker_cli(p.docker_host, "ps", "--format", "{{.Names}}")
    assert ps.returncode == 0 and b"tecna" in ps.stdout, ps.stderr
    run = docker_cli(p.docker_host, "run", "--name", "tecna-run", dockerd.image, "true")
    assert run.returncode != 0 and b"blocked by policy" in run.stderr, run.stderr
    assert dockerd.inspect("tecna-run") is None
    stop = docker_cli(p.docker_host, "stop", "tecna")
    assert stop.returncode != 0
    assert (dockerd.inspect("tecna") or {})["State"]["Running"]
    assert_blocked(call(p.addr, "GET", "/images/json"))


def test_post_allows_create_but_not_privileged(dockerd: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(dockerd.socket_path, env={"CONTAINERS": "1", "POST": "1"})
    try:
        ok = docker_cli(p.docker_host, "create", "--name", "tecna-ok", dockerd.image, "true")
        assert ok.returncode == 0, ok.stderr
        priv = docker_cli(
            p.docker_host, "create", "--privileged", "--name", "tecna-priv", dockerd.image
        )
        assert priv.returncode != 0 and b"blocked by policy" in priv.stderr, priv.stderr
        bind = docker_cli(
            p.docker_host, "create", "-v", "/:/host", "--name", "tecna-bind", dockerd.image
        )
        assert bind.returncode != 0
        assert dockerd.inspect("tecna-priv") is None and dockerd.inspect("tecna-bind") is None
        # POST=1 opens writes only in enabled sections: images are still closed.
        assert_blocked(call(p.addr, "POST", "/images/create?fromImage=busybox&tag=latest"))
    finally:
        for n in ("tecna-ok", "tecna-priv", "tecna-bind"):
            dockerd.remove(n)


def test_allow_restarts_without_post(dockerd: Daemon, proxies: ProxyPool, target: str) -> None:
    p = proxies.get(
        dockerd.socket_path, env={"CONTAINERS": "1", "ALLOW_RESTARTS": "1", "POST": "0"}
    )
    before = (dockerd.inspect("tecna") or {})["State"]["StartedAt"]
    r = docker_cli(p.docker_host, "restart", "-t", "0", "tecna")
    assert r.returncode == 0, r.stderr
    assert (dockerd.inspect("tecna") or {})["State"]["StartedAt"] != before
    create = docker_cli(p.docker_host, "create", "--name", "tecna-no", dockerd.image)
    assert create.returncode != 0 and b"blocked by policy" in create.stderr
    rm = docker_cli(p.docker_host, "rm", "-f", "tecna")
    assert rm.returncode != 0
    assert dockerd.inspect("tecna") is not None


@pytest.mark.parametrize("exec_on", ["0", "1"])
def test_exec_gate(dockerd: Daemon, proxies: ProxyPool, target: str, exec_on: str) -> None:
    p = proxies.get(dockerd.socket_path, env={"CONTAINERS": "1", "POST": "1", "EXEC": exec_on})
    before = dockerd.exec_ids("tecna")
    r = docker_cli(p.docker_host, "exec", "tecna", "echo", "hi")
    if exec_on == "1":
        assert r.returncode == 0 and r.stdout.strip() == b"hi", r.stderr
    else:
        assert r.returncode != 0 and b"blocked by policy" in r.stderr, r.stderr
        assert dockerd.exec_ids("tecna") <= before


def test_exec_privileged_denied_even_with_exec(
    dockerd: Daemon, proxies: ProxyPool, target: str
) -> None:
    p = proxies.get(dockerd.socket_path, env={"CONTAINERS": "1", "POST": "1", "EXEC": "1"})
    before = dockerd.exec_ids("tecna")
    r = docker_cli(p.docker_host, "exec", "--privileged", "tecna", "true")
    assert r.returncode != 0 and b"blocked by policy" in r.stderr, r.stderr
    assert dockerd.exec_ids("tecna") <= before
