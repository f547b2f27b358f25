"""Routes dockerd serves that a policy must be able to allow: a legacy link removal
(`DELETE /containers/{parent}/{alias}?link=1`, a name with '/'), the attach websocket (a real
websocket client through the proxy), and exec users as the policy lists them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import RawConnection, call, json_request, request_bytes

pytestmark = pytest.mark.docker

PARENT, CHILD, OTHER = "lnk-parent", "lnk-child", "lnk-other"


def _linked(daemon: Daemon, parent: str, alias: str) -> bool:
    links = (daemon.inspect(parent) or {}).get("HostConfig", {}).get("Links") or []
    return any(link.endswith(f"/{parent}/{alias}") for link in links)


@pytest.fixture
def linked(dockerd: Daemon) -> Iterator[None]:
    """CHILD runs; PARENT links to it as "db" and OTHER (another team's) as "db" too."""
    dockerd.create(CHILD)
    for name, team in ((PARENT, "mine"), (OTHER, "theirs")):
        dockerd.remove(name)
        body = {
            "Image": dockerd.image,
            "Cmd": ["sleep", "3600"],
            "Labels": {"team": team},
            "HostConfig": {"Links": [f"{CHILD}:db"]},
        }
        r = dockerd.api("POST", "/containers/create", body, query={"name": name})
        if r.status != 201:
            pytest.skip(f"this dockerd cannot create legacy links: {r.status} {r.body[:200]!r}")
        assert _linked(dockerd, name, "db"), dockerd.inspect(name)
    yield
    for name in (PARENT, OTHER, CHILD):
        dockerd.remove(name)


def test_link_removal_is_allowed_on_the_parent_only(
    dockerd: Daemon, proxies: ProxyPool, linked: None
) -> None:
    rules = [{"allow": ["containers.delete"], "containers": {"labels": {"team": "mine"}}}]
    addr = proxies.get(dockerd.socket_path, rules).addr
    # Another team's parent: refused, its link stays.
    r = call(addr, "DELETE", f"/v1.41/containers/{OTHER}/db?link=1")
    assert r.status == 403, r.body
    assert _linked(dockerd, OTHER, "db")
    # Without link=1 the same path deletes the container the link names: decided on CHILD,
    # which is not "mine".
    r = call(addr, "DELETE", f"/v1.41/containers/{PARENT}/db?force=1")
    assert r.status == 403, r.body
    assert dockerd.inspect(CHILD) is not None
    # Our parent: the link goes, both containers stay.
    r = call(addr, "DELETE", f"/v1.41/containers/{PARENT}/db?link=1")
    assert r.status == 204, r.body
    assert not _linked(dockerd, PARENT, "db")
    assert dockerd.inspect(PARENT) is not None and dockerd.inspect(CHILD) is not None
    assert _linked(dockerd, OTHER, "db")


@pytest.mark.parametrize(
    "target",
    [
        f"/containers/{PARENT}//db?link=1",
        f"/containers/{PARENT}/db/?link=1",
        f"/containers/{PARENT}%2Fdb?link=1",
        f"/containers/{PARENT}/./db?link=1",
        f"/containers/x/../{PARENT}/db?link=1",
    ],
)
def test_link_paths_stay_canonical(
    dockerd: Daemon, proxies: ProxyPool, linked: None, target: str
) -> None:
    addr = proxies.get(dockerd.socket_path, [{"allow": ["containers.*"]}]).addr
    assert call(addr, "DELETE", target).status == 400
    assert _linked(dockerd, PARENT, "db")


def _accept(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def _ws_url(port: int, ref: str) -> str:
    return f"ws://127.0.0.1:{port}/v1.41/containers/{ref}/attach/ws?stream=1&stdin=1&stdout=1"


def _echo_container(daemon: Daemon) -> str:
    return daemon.create("ws-echo", ["cat"], open_stdin=True)


@pytest.mark.parametrize(
    ("rules", "env"),
    [
        ([{"allow": ["containers.attach-websocket"]}], None),
        (None, {"CONTAINERS": "1", "ALLOW_ATTACH_WS": "1"}),
    ],
    ids=["rule", "env"],
)
def test_attach_websocket_when_allowed(
    daemon: Daemon, proxies: ProxyPool, rules: Any, env: dict[str, str] | None
) -> None:
    cid = _echo_container(daemon)
    proxy = proxies.get(daemon.socket_path, rules, env=env)
    try:
        ws = websocket.create_connection(_ws_url(proxy.addr[1], cid), timeout=15)
    except websocket.WebSocketBadStatusException as e:
        if daemon.kind == "podman" and e.status_code in (400, 404, 405, 501):
            direct = daemon.api("GET", f"/v1.41/containers/{cid}/attach/ws")
            pytest.skip(f"podman's compat API has no attach/ws: {e} (direct {direct.status})")
        raise
    try:
        ws.send_binary(b"hello through the proxy\n")
        got = b""
        while b"\n" not in got:
            frame = ws.recv()
            got += frame if isinstance(frame, bytes) else frame.encode()
        assert got.startswith(b"hello through the proxy")
    finally:
        ws.close()
        daemon.remove(cid)


def _stdin_once_cat(daemon: Daemon) -> str:
    """`cat` whose stdin closes when the attached client's does: it then exits."""
    daemon.remove("ws-once")
    body = {
        "Image": daemon.image,
        "Cmd": ["cat"],
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
    }
    r = daemon.api("POST", "/containers/create", body, query={"name": "ws-once"})
    assert r.status == 201, r.body
    cid: str = r.json()["Id"]
    return cid


def _client_frame(payload: bytes) -> bytes:
    """One masked binary frame (a zero mask leaves the payload as it is)."""
    assert len(payload) < 126
    return bytes([0x82, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_attach_websocket_handshake_and_half_close(dockerd: Daemon, proxies: ProxyPool) -> None:
    cid = _stdin_once_cat(dockerd)
    addr = proxies.get(dockerd.socket_path, [{"allow": ["containers.attach-websocket"]}]).addr
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Origin": "http://localhost",
    }
    target = f"/v1.41/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1"
    try:
        with RawConnection(*addr, timeout=20) as c:
            c.send(request_bytes("GET", target, headers=headers))
            resp = c.read_response(head_request=True)
            assert resp.status == 101
            # The daemon's answer to this key, passed on unchanged (RFC 6455 section 1.3).
            assert resp.header("Sec-WebSocket-Accept") == _accept(key)
            assert dockerd.api("POST", f"/containers/{cid}/start").status == 204
            c.send(_client_frame(b"half-closed\n"))
            # The client is done sending: the EOF reaches cat's stdin, cat still answers and
            # exits, and the daemon ends the tunnel.
            c.shutdown_write()
            while c._fill():
                pass
            assert b"half-closed\n" in c.buf
        state = (dockerd.inspect(cid) or {}).get("State", {})
        assert state.get("Running") is False and state.get("ExitCode") == 0, state
    finally:
        dockerd.remove(cid)


def test_attach_websocket_denied_by_policy(daemon: Daemon, proxies: ProxyPool) -> None:
    cid = _echo_container(daemon)
    addr = proxies.get(daemon.socket_path, [{"allow": ["containers.attach"]}]).addr
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            websocket.create_connection(_ws_url(addr[1], cid), timeout=10)
        assert exc.value.status_code == 403
        env_addr = proxies.get(daemon.socket_path, env={"CONTAINERS": "1"}).addr
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            websocket.create_connection(_ws_url(env_addr[1], cid), timeout=10)
        assert exc.value.status_code == 403
    finally:
        daemon.remove(cid)


def test_websocket_upgrade_elsewhere_is_malformed(daemon: Daemon, proxies: ProxyPool) -> None:
    addr = proxies.get(daemon.socket_path, [{"allow": ["*"]}]).addr
    for method, target in (("GET", "/containers/json"), ("POST", "/containers/web/attach")):
        data = request_bytes(
            method, target, headers={"Connection": "Upgrade", "Upgrade": "websocket"}
        )
        with RawConnection(*addr) as c:
            c.send(data)
            assert c.read_response().status == 400


@pytest.mark.parametrize(
    ("users", "user", "allowed"),
    [
        ([], "", True),  # no User: the container's own user
        ([], "root", False),  # an empty list names no user
        ([], "0", False),
        (["nobody"], "nobody", True),
        (["nobody"], "0", False),
        (["*"], "0", True),
    ],
)
def test_exec_users(
    daemon: Daemon, proxies: ProxyPool, users: list[str], user: str, allowed: bool
) -> None:
    cid = daemon.create("exec-users")
    rules = [{"allow": ["exec.create", "exec.start"], "exec": {"users": users}}]
    addr = proxies.get(daemon.socket_path, rules).addr
    before = daemon.exec_ids(cid)
    body = {"Cmd": ["id", "-u"], "AttachStdout": True, **({"User": user} if user else {})}
    try:
        with RawConnection(*addr) as c:
            c.send(json_request("POST", f"/containers/{cid}/exec", body))
            status = c.read_response().status
        assert status == (201 if allowed else 403)
        assert (daemon.exec_ids(cid) != before) == allowed
    finally:
        daemon.remove(cid)


def test_env_mode_execs_name_no_user(dockerd: Daemon, proxies: ProxyPool) -> None:
    cid = dockerd.create("exec-users-env")
    env = {"CONTAINERS": "1", "EXEC": "1", "POST": "1"}
    addr = proxies.get(dockerd.socket_path, env=env).addr
    try:
        named = {"Cmd": ["id"], "User": "0"}
        assert call(addr, "POST", f"/containers/{cid}/exec", named).status == 403
        assert call(addr, "POST", f"/containers/{cid}/exec", {"Cmd": ["id"]}).status == 201
    finally:
        dockerd.remove(cid)
