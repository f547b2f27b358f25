"""Tecnativa docker-socket-proxy drop-in: no policy file, the same environment variables,
the same answers (plus the host-power checks Tecnativa never had)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import TECNATIVA_VARS, ProxyPool, proxy_command
from tests.support.rawhttp import assert_blocked, call
from tests.support.waiting import wait_for

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
    # The refusal names the variables that would open it, where the user reads it.
    assert b"env mode: set CONTAINERS=1 POST=1" in run.stderr, run.stderr
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
        assert b"env mode: set EXEC=1 POST=1" in r.stderr, r.stderr
        assert dockerd.exec_ids("tecna") <= before


def test_exec_privileged_denied_even_with_exec(
    dockerd: Daemon, proxies: ProxyPool, target: str
) -> None:
    p = proxies.get(dockerd.socket_path, env={"CONTAINERS": "1", "POST": "1", "EXEC": "1"})
    before = dockerd.exec_ids("tecna")
    r = docker_cli(p.docker_host, "exec", "--privileged", "tecna", "true")
    assert r.returncode != 0 and b"blocked by policy" in r.stderr, r.stderr
    assert dockerd.exec_ids("tecna") <= before


# -- what a person switching from Tecnativa keeps: values, names, listen addresses ---------------

HAPROXY_FLAG_CFG = """
defaults
    mode http
    timeout client 10s
    timeout server 10s
    timeout connect 10s

frontend flag
    bind "127.0.0.1:${PORT}"
    http-request return status 200 if { env(INFO) -m bool }
    http-request deny
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _haproxy_reads_on(tmp_path: Path, value: str) -> bool:
    """Tecnativa's own reading of a flag: a real HAProxy answering `env(INFO) -m bool`."""
    cfg = tmp_path / "flag.cfg"
    cfg.write_text(HAPROXY_FLAG_CFG)
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "INFO": value, "PORT": str(port)}
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _connects(port), 10, "haproxy listening")
        return call(("127.0.0.1", port), "GET", "/info").status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("value", ["1", "0", "2", "1 ", "0 ", "01", "1.0", "1 # for portainer"])
def test_flag_values_read_as_haproxy_reads_them(
    dockerd: Daemon, proxies: ProxyPool, tmp_path: Path, value: str
) -> None:
    """The values Tecnativa's HAProxy reads as on (a leading non-zero integer) are on here too,
    and the ones it reads as off are off: `INFO=1.0` or `INFO=1 # note` no longer closes /info."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed (apt-get install haproxy)")
    theirs = _haproxy_reads_on(tmp_path, value)
    p = proxies.get(dockerd.socket_path, env={"INFO": value})
    ours = call(p.addr, "GET", "/info").status == 200
    assert ours is theirs, (value, theirs)


def test_unclear_and_misspelt_variables_are_reported(
    dockerd: Daemon, proxies: ProxyPool, target: str
) -> None:
    env = {
        "CONTAINERS": "1 # for traefik",
        "CONTAINER": "1",
        "ALLOW_RESTART": "1",
        "IMAGES": "true",
        "PUT": "1",
    }
    p = proxies.get(dockerd.socket_path, env=env)
    lines = [json.loads(x) for x in p.stderr_text().splitlines() if x.startswith("{")]
    warnings = [x["warning"] for x in lines if x.get("msg") == "environment variable"]
    assert any("did you mean CONTAINERS?" in w for w in warnings), warnings
    assert any("did you mean ALLOW_RESTARTS?" in w for w in warnings), warnings
    assert "IMAGES='true' is read as on (Tecnativa read it as off); write IMAGES=1" in warnings
    assert any(w.startswith("PUT is not a variable") for w in warnings), warnings
    assert any(w.startswith("CONTAINERS='1 # for traefik' is read as on") for w in warnings)
    on = next(x["on"] for x in lines if x.get("msg") == "policy from environment")
    assert "CONTAINERS" in on and "IMAGES" in on and "ALLOW_RESTARTS" not in on
    ps = docker_cli(p.docker_host, "ps", "--format", "{{.Names}}")
    assert ps.returncode == 0, ps.stderr
    restart = docker_cli(p.docker_host, "restart", "-t", "0", "tecna")
    assert restart.returncode != 0 and b"blocked by policy" in restart.stderr


@pytest.mark.parametrize("disable_ipv6", [None, "1"])
def test_default_listen_is_dual_stack_unless_disable_ipv6(
    dockerd: Daemon, target: str, tmp_path: Path, disable_ipv6: str | None
) -> None:
    """Without --listen, as Tecnativa's image (`[::]:2375 v4v6`): a client reaching the proxy
    over IPv6 (an IPv6 compose network, `localhost` resolving to ::1) gets through, unless
    DISABLE_IPV6=1."""
    if not socket.has_ipv6 or not _can_bind(("::1", 0), socket.AF_INET6):
        pytest.skip("no IPv6 loopback on this host")
    if not _can_bind(("0.0.0.0", 2375), socket.AF_INET) or not _can_bind(
        ("::", 2375), socket.AF_INET6
    ):
        pytest.skip("port 2375 is in use")
    env = {k: v for k, v in os.environ.items() if k not in TECNATIVA_VARS}
    env.update({"CONTAINERS": "1", **({"DISABLE_IPV6": disable_ipv6} if disable_ipv6 else {})})
    err = tmp_path / "stderr"
    with err.open("wb") as f:
        proc = subprocess.Popen(
            [
                *proxy_command(),
                "proxy",
                "--socket",
                dockerd.socket_path,
                "--metrics-listen",
                "none",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=f,
            start_new_session=True,
        )
    try:
        wait_for(lambda: '"listening"' in err.read_text(), 20, "proxy listening")
        listening = next(json.loads(x) for x in err.read_text().splitlines() if '"listening"' in x)
        v4 = docker_cli("tcp://127.0.0.1:2375", "ps", "--format", "{{.Names}}")
        assert v4.returncode == 0 and b"tecna" in v4.stdout, v4.stderr
        v6 = docker_cli("tcp://[::1]:2375", "ps", "--format", "{{.Names}}")
        if disable_ipv6:
            assert listening["listen"] == ["tcp://0.0.0.0:2375"]
            assert v6.returncode != 0
        else:
            assert listening["listen"] == ["tcp://0.0.0.0:2375", "tcp://[::]:2375"]
            assert v6.returncode == 0 and b"tecna" in v6.stdout, v6.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _can_bind(addr: tuple[str, int], family: socket.AddressFamily) -> bool:
    with socket.socket(family) as s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError:
            return False
    return True
