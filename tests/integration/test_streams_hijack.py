"""Class 9: streams and hijacked connections with the real docker CLI. Events, logs -f,
stats, attach and exec go through the proxy as they go straight to the daemon; stdin EOF
(half-close) reaches the container; a quiet stream is not cut by an idle timeout."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon, LineReader, docker_cli
from tests.support.proxyproc import ProxyPool
from tests.support.waiting import holds_for, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cli_available")]

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.*", "exec.*", "system.*", "images.inspect", "images.list"]},
]
IDLE = 6.0  # longer than any plausible default idle timeout we would have set by mistake


@pytest.fixture
def host(daemon: Daemon, proxies: ProxyPool, named_containers: dict[str, str]) -> str:
    return proxies.get(daemon.socket_path, RULES).docker_host


@pytest.fixture
def payload(tmp_path: Any) -> Iterator[Any]:
    path = tmp_path / "stdin.txt"
    # ~300 KB of lines: several chunks and TCP windows, but quick.
    path.write_bytes(b"".join(b"line %06d the quick brown fox\n" % i for i in range(10000)))
    yield path


def test_idle_streams_are_not_cut(daemon: Daemon, host: str) -> None:
    daemon.create("quiet", ["sh", "-c", f"echo one; sleep {IDLE}; echo two; sleep 3600"])
    daemon.create("evt", ["sleep", "3600"], start=False)
    events = LineReader(host, "events", "--filter", "container=evt", "--format", "{{.Status}}")
    logs = LineReader(host, "logs", "-f", "quiet")
    exec_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    exec_env.update(DOCKER_HOST=host, DOCKER_CONFIG="/tmp/dso-test-docker-config")
    quiet_exec = subprocess.Popen(
        ["docker", "exec", "web", "sh", "-c", f"sleep {IDLE}; echo done"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=exec_env,
    )
    try:
        assert logs.wait_for("one", 10), logs.stop()
        holds_for(
            lambda: (
                events.proc.poll() is None
                and logs.proc.poll() is None
                and quiet_exec.poll() in (None, 0)
            ),
            IDLE,
            "events and logs -f still streaming, the quiet exec not cut, through the idle period",
        )
        assert daemon.api("POST", "/containers/evt/start").status == 204
        assert events.wait_for("start", 10), f"events stream lost: {events.seen} {events.stop()}"
        assert logs.wait_for("two", 10), f"logs -f cut: {logs.seen} {logs.stop()}"
        out, err = quiet_exec.communicate(timeout=20)
        assert quiet_exec.returncode == 0, err
        assert out.strip() == b"done"
    finally:
        events.stop()
        logs.stop()
        if quiet_exec.poll() is None:
            quiet_exec.kill()
        daemon.remove("quiet")
        daemon.remove("evt")


def test_stats_no_stream(daemon: Daemon, host: str) -> None:
    args = ("stats", "--no-stream", "--format", "{{.Name}} {{.ID}}", "web")
    direct = docker_cli(daemon.host, *args, timeout=60)
    if direct.returncode != 0:
        pytest.skip(f"{daemon.kind} itself fails docker stats: {direct.stderr[:200]!r}")
    r = docker_cli(host, *args, timeout=60)
    assert r.returncode == 0, r.stderr
    # Same answer as straight from the engine (podman's compat Name drops a character).
    assert r.stdout == direct.stdout


def test_exec_stdin_half_close(daemon: Daemon, host: str, payload: Any) -> None:
    data = payload.read_bytes()
    r = docker_cli(host, "exec", "-i", "web", "cat", input_=data, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_run_interactive_rm(daemon: Daemon, host: str, payload: Any) -> None:
    data = payload.read_bytes()[:20000]
    r = docker_cli(
        host, "run", "-i", "--rm", "--name", "runi", daemon.image, "cat", input_=data, timeout=90
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    wait_for(lambda: daemon.inspect("runi") is None, 30, "the --rm container runi removed")


def test_attach_with_stdin(daemon: Daemon, host: str) -> None:
    body = {
        "Image": daemon.image,
        "Cmd": ["cat"],
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "Labels": {"dso.test": "1"},
    }
    for name in ("att-direct", "att"):
        daemon.remove(name)
        assert daemon.api("POST", "/containers/create", body, query={"name": name}).status == 201
        assert daemon.api("POST", f"/containers/{name}/start").status == 204
    try:
        data = b"hello through attach\n" * 50
        direct = docker_cli(daemon.host, "attach", "att-direct", input_=data, timeout=30)
        if direct.returncode != 0 or direct.stdout != data:
            pytest.skip(
                f"{daemon.kind} attach with stdin EOF misbehaves directly: {direct.stderr[:200]!r}"
            )
        r = docker_cli(host, "attach", "att", input_=data, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == data
    finally:
        daemon.remove("att")
        daemon.remove("att-direct")


def test_attach_no_stdin_sees_output(daemon: Daemon, host: str) -> None:
    daemon.create("ticker", ["sh", "-c", "while true; do echo tick; sleep 0.5; done"])
    reader = LineReader(host, "attach", "--no-stdin", "ticker")
    try:
        assert reader.wait_for("tick", 10), reader.stop()
    finally:
        reader.stop()
        daemon.remove("ticker")


def _attach_logs_only(address: str | tuple[str, int], cid: str) -> tuple[bytes, bytes]:
    """An attach with stream=0 (the logs only), read to the daemon's close whenever the bytes
    come: the head, and every byte after it."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(address)
        s.sendall(
            b"POST /containers/%s/attach?logs=1&stdout=1&stderr=1&stream=0 HTTP/1.1\r\n"
            b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Length: 0\r\n\r\n" % cid.encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_attach_logs_only_relays_every_byte(daemon: Daemon, proxies: ProxyPool) -> None:
    """docker-py's attach(stream=False) reads the upgrade head through http.client's buffered
    reader and then the raw socket, so bytes that came with the head are dropped on its side,
    straight at the daemon too when it reads late (its own suite's test_attach_no_stream). The
    proxy's part is that every byte after the head reaches the client, read early or late."""
    proxy = proxies.get(daemon.socket_path, RULES)
    cid = daemon.create("logsonly", ["sh", "-c", "echo out; echo err >&2"])
    try:
        assert daemon.api("POST", f"/containers/{cid}/wait", timeout=30).status == 200
        d_head, direct = _attach_logs_only(daemon.socket_path, cid)
        p_head, through = _attach_logs_only(proxy.addr, cid)
        assert d_head.split(b" ")[1] in (b"101", b"200"), d_head
        assert p_head.split(b" ")[1] == d_head.split(b" ")[1], (p_head, d_head)
        # Multiplexed frames: stdout "out\n" and stderr "err\n", as the daemon sent them.
        assert b"out\n" in direct and b"err\n" in direct, direct
        assert through == direct
    finally:
        daemon.remove("logsonly")


def test_logs_and_wait(daemon: Daemon, host: str) -> None:
    daemon.create("once", ["sh", "-c", "echo out; echo err >&2"])
    w = docker_cli(host, "wait", "once", timeout=30)
    assert w.returncode == 0 and w.stdout.strip() == b"0", w.stderr
    logs = docker_cli(host, "logs", "once", timeout=30)
    assert logs.stdout.strip() == b"out" and logs.stderr.strip() == b"err"
    daemon.remove("once")
