"""Issue 7, classes 2 and 5, on dockerd and on Podman.

One reading: a client scoped to `or-*` containers tries to rename one of them out of its scope
by making the proxy and the daemon read different `name` parameters (a repeated parameter, a
spelling only one daemon folds, a form body dockerd merges into the query, a repeated header).
Each is refused with 400 and the container keeps its name on the daemon.

Slow clients: half-sent heads get 408 and are closed, their descriptors come back, a flood
from one address does not lock out another, the connection caps answer 503, streams stay
open past every timeout once started, and a client that sends on without reading its answers
is not read further (then closed after the body timeout if it never reads).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool, ProxyProcess, policy_document
from tests.support.rawhttp import RawConnection, call, request_bytes
from tests.support.waiting import settled, wait_for

RULES: list[dict[str, Any]] = [
    {"allow": ["system.ping", "system.version", "containers.list", "system.events"]},
    {
        "allow": ["containers.inspect", "containers.rename", "containers.create"],
        "containers": {"names": ["or-*"]},
    },
]

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def mine(daemon: Daemon) -> Iterator[str]:
    cid = daemon.create("or-mine", start=False)
    yield cid
    daemon.remove(cid)
    daemon.remove("evil")


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES).addr


def _name(daemon: Daemon, cid: str) -> str:
    doc = daemon.inspect(cid)
    assert doc is not None
    return str(doc["Name"]).lstrip("/")


def _send(addr: tuple[str, int], raw: bytes) -> Any:
    with RawConnection(*addr) as c:
        c.send(raw)
        return c.read_response()


def _assert_kept_its_name(daemon: Daemon, cid: str) -> None:
    assert _name(daemon, cid) == "or-mine"
    assert daemon.inspect("evil") is None


RENAME_QUERIES = {
    "repeat-first-in-scope": "name=or-ok&name=evil",  # Go reads the first, Podman the last
    "repeat-last-in-scope": "name=evil&name=or-ok",
    "repeat-encoded": "name=or-ok&na%6De=evil",
    "repeat-plus-vs-space": "name=or-ok&name+=evil&name%20=x",
    "repeat-case": "name=or-ok&NAME=evil",  # Podman matches names ignoring case
    "case-only": "NAME=evil",  # dockerd ignores it, Podman reads it
    "semicolon": "name=or-ok;name=evil",
}


@pytest.mark.parametrize("query", RENAME_QUERIES.values(), ids=RENAME_QUERIES.keys())
def test_rename_out_of_scope_with_two_readings_of_the_query_is_refused(
    daemon: Daemon, addr: tuple[str, int], mine: str, query: str
) -> None:
    r = call(addr, "POST", f"/containers/or-mine/rename?{query}")
    assert r.status == 400, (r.status, r.body[:300])
    assert r.header("Content-Type") == "application/json" and r.message
    _assert_kept_its_name(daemon, mine)


FORM_TYPES = [
    FORM,
    "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    f" {FORM} ;",
    f"{FORM};;bad",  # Go: a form, and an error dockerd ignores
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize("ctype", FORM_TYPES)
def test_rename_by_form_body_is_refused(
    daemon: Daemon, addr: tuple[str, int], mine: str, ctype: str
) -> None:
    # dockerd's r.Form puts the body's name ahead of the query's.
    raw = request_bytes(
        "POST",
        "/containers/or-mine/rename?name=or-ok",
        headers={"Content-Type": ctype},
        body=b"name=evil",
    )
    r = _send(addr, raw)
    assert r.status == 400, (r.status, r.body[:300])
    assert "form" in r.message
    _assert_kept_its_name(daemon, mine)


def test_chunked_form_body_is_refused(daemon: Daemon, addr: tuple[str, int], mine: str) -> None:
    raw = request_bytes(
        "POST",
        "/containers/or-mine/rename?name=or-ok",
        headers={"Content-Type": FORM, "Transfer-Encoding": "chunked"},
    )
    r = _send(addr, raw + b"9\r\nname=evil\r\n0\r\n\r\n")
    assert r.status == 400, (r.status, r.body[:300])
    _assert_kept_its_name(daemon, mine)


def test_unicode_content_type_that_go_lowercases_to_a_form_is_refused(
    daemon: Daemon, addr: tuple[str, int], mine: str
) -> None:
    ctype = "appl\u0130cation/x-www-form-urlencoded".encode().decode("latin-1")
    raw = request_bytes(
        "POST",
        "/containers/or-mine/rename?name=or-ok",
        headers={"Content-Type": ctype},
        body=b"name=evil",
    )
    r = _send(addr, raw)
    assert r.status == 400, (r.status, r.body[:300])
    _assert_kept_its_name(daemon, mine)


HEADERS = {
    "content-type": [("Content-Type", "application/json"), ("Content-Type", FORM)],
    "content-type-case": [("Content-Type", "application/json"), ("content-type", FORM)],
    "host": [("Host", "docker"), ("Host", "other")],
    "x-registry-auth": [("X-Registry-Auth", "e30="), ("X-Registry-Auth", "e30=")],
    "authorization": [("Authorization", "a"), ("Authorization", "b")],
}


@pytest.mark.parametrize("headers", HEADERS.values(), ids=HEADERS.keys())
def test_repeated_headers_are_refused(
    daemon: Daemon, addr: tuple[str, int], mine: str, headers: list[tuple[str, str]]
) -> None:
    raw = request_bytes(
        "POST", "/containers/or-mine/rename?name=or-ok", headers=headers, body=b"name=evil"
    )
    r = _send(addr, raw)
    assert r.status == 400, (r.status, r.body[:300])
    assert "repeated header" in r.message
    _assert_kept_its_name(daemon, mine)


def test_create_with_a_repeated_name_creates_nothing(daemon: Daemon, addr: tuple[str, int]) -> None:
    body = {"Image": daemon.image, "Cmd": ["true"]}
    r = call(addr, "POST", "/containers/create?name=or-new&name=evil", body)
    assert r.status == 400, (r.status, r.body[:300])
    assert daemon.inspect("evil") is None and daemon.inspect("or-new") is None


def test_a_plain_rename_in_scope_still_works(
    daemon: Daemon, addr: tuple[str, int], mine: str
) -> None:
    r = call(addr, "POST", "/containers/or-mine/rename?name=or-renamed")
    assert r.status in (200, 204), (r.status, r.body[:300])
    assert _name(daemon, mine) == "or-renamed"
    r = call(addr, "POST", "/containers/or-renamed/rename?name=or-mine")
    assert r.status in (200, 204), (r.status, r.body[:300])


# -- slow clients and connection caps ------------------------------------------------------------

HALF_HEAD = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: "


def _proxy(
    daemon: Daemon, tmp_path: Path, *args: str, audit: str = "all"
) -> Iterator[ProxyProcess]:
    p = ProxyProcess(
        daemon.socket_path,
        tmp_path / "proxy",
        policy=policy_document(RULES, audit=audit),
        extra_args=list(args),
    )
    with p:
        yield p


def _fds(p: ProxyProcess) -> int:
    assert p.proc is not None
    return len(os.listdir(f"/proc/{p.proc.pid}/fd"))


def _connect(p: ProxyProcess, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(p.addr, timeout=30, source_address=(source, 0))
    return s


def _ping_from(p: ProxyProcess, source: str) -> int:
    with _connect(p, source) as s:
        s.sendall(request_bytes("GET", "/_ping", headers={"Connection": "close"}))
        return int(s.recv(4096).split(b" ", 2)[1])


def _answer(s: socket.socket) -> bytes:
    """Everything the proxy sends before it closes the connection."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _refused_from(p: ProxyProcess, source: str) -> bytes | None:
    with _connect(p, source) as s:
        s.sendall(request_bytes("GET", "/_ping", headers={"Connection": "close"}))
        answer = _answer(s)
    return answer if answer.startswith(b"HTTP/1.1 503 ") else None


def _raise_fd_limit(n: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"descriptor limit {hard} is below the {n} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


@pytest.fixture
def slow_proxy(daemon: Daemon, tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _proxy(daemon, tmp_path, "--head-timeout", "4", "--max-connections-per-client", "0")


def test_half_sent_heads_get_408_and_give_their_descriptors_back(
    slow_proxy: ProxyProcess,
) -> None:
    count = 1500
    _raise_fd_limit(count + 256)
    baseline = _fds(slow_proxy)
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            s = stack.enter_context(_connect(slow_proxy))
            s.sendall(HALF_HEAD)
            socks.append(s)
        wait_for(lambda: _fds(slow_proxy) >= baseline + count, 30, "the proxy to hold them all")
        # Not locked out: another client is answered while they are held.
        assert _ping_from(slow_proxy, "127.0.0.1") == 200
        answers = [_answer(s) for s in socks]
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}
    assert b"request head not received" in answers[0]
    timed_out = slow_proxy.wait_audit(lambda x: x.get("status") == 408)
    assert any(x.get("status") == 408 and x["decision"] == "reject" for x in timed_out)
    wait_for(lambda: _fds(slow_proxy) <= baseline + 2, 30, "the descriptors to be released")
    assert _ping_from(slow_proxy, "127.0.0.1") == 200


@pytest.fixture
def capped_proxy(daemon: Daemon, tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _proxy(
        daemon,
        tmp_path,
        "--head-timeout",
        "60",
        "--max-connections",
        "5",
        "--max-connections-per-client",
        "3",
    )


def test_connection_caps_answer_503_and_keep_other_clients_served(
    capped_proxy: ProxyProcess,
) -> None:
    p = capped_proxy
    with ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(_connect(p, "127.0.0.1")).sendall(HALF_HEAD)
        over = stack.enter_context(_connect(p, "127.0.0.1"))
        answer = _answer(over)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"too many connections from 127.0.0.1" in answer
        assert b'{"message": ' in answer
        # a flood from one address leaves room for the others
        assert _ping_from(p, "127.0.0.2") == 200
        for _ in range(2):
            stack.enter_context(_connect(p, "127.0.0.2")).sendall(HALF_HEAD)
        answer = wait_for(lambda: _refused_from(p, "127.0.0.3"), 10, "the total cap")
        assert b"too many connections to the proxy" in answer
        lines = p.wait_audit(lambda x: x.get("status") == 503)
        refused = [x for x in lines if x.get("status") == 503]
        assert refused and refused[0]["operation"] == "connection", refused
    # the held connections are gone: everyone is served again
    wait_for(lambda: _ping_from(p, "127.0.0.1") == 200, 10, "service after the flood")


@pytest.fixture
def quick_proxy(daemon: Daemon, tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _proxy(
        daemon, tmp_path, "--head-timeout", "1", "--idle-timeout", "1", "--body-timeout", "1"
    )


def test_idle_keep_alive_connections_are_closed(quick_proxy: ProxyProcess) -> None:
    with RawConnection(*quick_proxy.addr) as c:
        c.send(request_bytes("GET", "/_ping"))
        assert c.read_response().status == 200
        wait_for(lambda: c.is_closed(wait=0.5), 10, "the idle connection to be closed")
        assert c.buf == b""  # closed quietly, no unsolicited answer


def test_a_body_that_stalls_gets_408_and_creates_nothing(
    daemon: Daemon, quick_proxy: ProxyProcess
) -> None:
    body = b'{"Image": "%s", "Cmd": ["true"]}' % daemon.image.encode()
    raw = request_bytes(
        "POST",
        "/containers/create?name=or-stalled",
        headers={"Content-Type": "application/json", "Content-Length": str(len(body) + 10)},
    )
    with RawConnection(*quick_proxy.addr) as c:
        c.send(raw + body)
        r = c.read_response()
        assert r.status == 408, (r.status, r.body[:200])
        assert "request body not received" in r.message
        assert c.is_closed()
    assert daemon.inspect("or-stalled") is None


def test_streams_outlive_every_timeout(daemon: Daemon, quick_proxy: ProxyProcess) -> None:
    with RawConnection(*quick_proxy.addr, timeout=30) as events:
        events.send(request_bytes("GET", "/events"))
        # A half-sent head opened now is timed out: the timeouts have run out for both.
        with _connect(quick_proxy) as slow:
            slow.sendall(HALF_HEAD)
            assert _answer(slow).startswith(b"HTTP/1.1 408 ")
        cid = daemon.create("or-event", start=False)
        try:
            wait_for(lambda: cid.encode() in events.buf or not events._fill(), 30, "the event")
            assert cid.encode() in events.buf and not events.closed_by_peer
        finally:
            daemon.remove(cid)


# -- a client that sends on without reading its answers -----------------------------------------

UNREAD = 100_000  # pipelined requests, far more answers than the proxy's buffers hold
DENIED = request_bytes("GET", "/no/such/route")
ANSWER_LINE = b"HTTP/1.1 403 Forbidden\r\n"


def _metric(p: ProxyProcess, line_start: str) -> int:
    status, body = p.get("/metrics", base=p.metrics_url)
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(line_start):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def _answered(p: ProxyProcess) -> int:
    return _metric(p, 'docker_socket_proxy_requests_total{operation="unknown",decision="deny"}')


def _pipeline_without_reading(p: ProxyProcess) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's window stays small
    s.connect(p.addr)

    def send() -> None:
        with contextlib.suppress(OSError):
            s.sendall(DENIED * UNREAD)

    threading.Thread(target=send, daemon=True).start()
    return s


def _until_answers_stop(p: ProxyProcess) -> int:
    wait_for(lambda: _answered(p) > 0, 60, "the first answers")
    # Quiet for longer than a starved process pauses on a loaded machine.
    stalled: int = settled(
        lambda: _answered(p), 1.5, 120, "the answers to a client that does not read"
    )
    return stalled


def _count_answers(s: socket.socket, want: int) -> int:
    """Answers read until `want` came or the proxy closed."""
    count, tail = 0, b""
    s.settimeout(60)
    while count < want:
        try:
            data = s.recv(1 << 20)
        except ConnectionResetError:  # closed with requests of ours still unread
            break
        if not data:
            break
        chunk = tail + data
        count += chunk.count(ANSWER_LINE)
        tail = chunk[-(len(ANSWER_LINE) - 1) :]
    return count


@pytest.fixture
def unread_proxy(daemon: Daemon, tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _proxy(daemon, tmp_path, audit="none")


@pytest.fixture
def impatient_proxy(daemon: Daemon, tmp_path: Path) -> Iterator[ProxyProcess]:
    yield from _proxy(daemon, tmp_path, "--body-timeout", "4", audit="none")


def test_a_client_that_does_not_read_is_not_read_further_then_served(
    unread_proxy: ProxyProcess,
) -> None:
    with _pipeline_without_reading(unread_proxy) as s:
        stalled_at = _until_answers_stop(unread_proxy)
        # Its answers would otherwise pile up in the proxy's memory without end.
        assert stalled_at < UNREAD // 2
        # Once it reads, it gets every answer, and the proxy goes on reading its requests.
        assert _count_answers(s, UNREAD) == UNREAD


def test_a_client_that_never_reads_is_closed_after_the_body_timeout(
    impatient_proxy: ProxyProcess,
) -> None:
    with _pipeline_without_reading(impatient_proxy) as s:
        stalled_at = _until_answers_stop(impatient_proxy)
        assert stalled_at < UNREAD // 2
        wait_for(
            lambda: _metric(impatient_proxy, "docker_socket_proxy_open_connections ") == 0,
            60,
            "the proxy to close a client that does not read",
        )
        assert _count_answers(s, UNREAD) < UNREAD
