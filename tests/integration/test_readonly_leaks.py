"""Class 6: "read-only" that is not. The read-only preset lists and inspects, but never hands
out file contents (archive, export, image save), a stream into the container (attach, ws),
or the secrets in a container's environment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import (
    RawConnection,
    assert_blocked,
    assert_refused,
    call,
    request_bytes,
)
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [{"preset": "read-only"}]
SECRET = "hunter2-s3cr3t"


@pytest.fixture(scope="module")
def leaky(daemon: Daemon) -> str:
    body = {
        "Image": daemon.image,
        "Cmd": ["sleep", "3600"],
        "Env": [f"DB_PASSWORD={SECRET}", "PLAIN=1"],
        "Labels": {"dso.test": "1"},
        "StopSignal": "SIGKILL",
    }
    daemon.remove("leaky")
    r = daemon.api("POST", "/containers/create", body, query={"name": "leaky"})
    assert r.status == 201, r.body
    cid: str = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    return cid


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, leaky: str) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def test_list_and_inspect_work(addr: tuple[str, int], leaky: str) -> None:
    r = call(addr, "GET", "/containers/json")
    assert r.status == 200 and leaky in {c["Id"] for c in r.json()}
    assert call(addr, "GET", "/containers/leaky/json").status == 200


def test_inspect_env_is_redacted(addr: tuple[str, int]) -> None:
    r = call(addr, "GET", "/containers/leaky/json")
    assert r.status == 200
    assert SECRET.encode() not in r.body
    env = r.json()["Config"]["Env"]
    assert any(e.startswith("DB_PASSWORD=") for e in env), env


@pytest.mark.parametrize(
    "method,target",
    [
        ("GET", "/containers/leaky/archive?path=/etc/passwd"),
        ("HEAD", "/containers/leaky/archive?path=/etc/passwd"),
        ("GET", "/v1.41/containers/leaky/archive?path=/"),
        ("GET", "/containers/leaky/export"),
        ("GET", "/images/bb:latest/get"),
        ("GET", "/images/localhost/bb:latest/get"),
        ("GET", "/images/get?names=bb:latest"),
        ("POST", "/containers/leaky/attach?stream=1&stdout=1&logs=1"),
        ("POST", "/containers/leaky/exec"),
        ("POST", "/containers/leaky/stop"),
        ("PUT", "/containers/leaky/archive?path=/tmp"),
    ],
)
def test_file_and_stream_reads_are_blocked(addr: tuple[str, int], method: str, target: str) -> None:
    r = call(addr, method, target, {"Cmd": ["env"]} if target.endswith("/exec") else None)
    if method == "HEAD":
        assert r.status == 403
    else:
        assert_blocked(r)
    assert SECRET.encode() not in r.body


def test_attach_websocket_is_blocked(addr: tuple[str, int]) -> None:
    data = request_bytes(
        "GET",
        "/containers/leaky/attach/ws?stream=1&stdout=1&logs=1",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "Origin": "http://docker",
        },
    )
    with RawConnection(*addr) as c:
        c.send(data)
        rs = c.read_responses(1)
    assert rs and rs[0].status != 101
    assert_refused(rs[0])


def test_docker_cp_and_export_fail_with_policy_message(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    cp = docker_cli(p.docker_host, "cp", "leaky:/etc/passwd", "-")
    assert cp.returncode != 0 and b"blocked by policy" in cp.stderr, cp.stderr
    ex = docker_cli(p.docker_host, "export", "leaky")
    assert ex.returncode != 0 and b"blocked by policy" in ex.stderr, ex.stderr
    save = docker_cli(p.docker_host, "save", "bb:latest")
    assert save.returncode != 0 and b"blocked by policy" in save.stderr


def test_docker_ps_and_inspect_cli_work_without_secret(daemon: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(daemon.socket_path, RULES)
    ps = docker_cli(p.docker_host, "ps", "--format", "{{.Names}}")
    assert ps.returncode == 0 and b"leaky" in ps.stdout, ps.stderr
    ins = docker_cli(p.docker_host, "inspect", "leaky")
    assert ins.returncode == 0 and SECRET.encode() not in ins.stdout


def test_stop_denied_leaves_container_running(daemon: Daemon, addr: tuple[str, int]) -> None:
    assert_blocked(call(addr, "POST", "/containers/leaky/kill"))
    holds_for(
        lambda: (daemon.inspect("leaky") or {})["State"]["Running"], 0.1, "leaky still running"
    )
