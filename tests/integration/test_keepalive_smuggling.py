"""Class 8: every request on a keep-alive connection is decided, and no byte sequence makes
the proxy and the daemon disagree about where one request ends (smuggling). Each smuggled
request below would create a privileged container named 'smuggled' if it reached dockerd."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import RawConnection, json_request, request_bytes
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.list", "containers.inspect", "system.ping", "system.version"]},
]
SMUGGLED_NAME = "smuggled"


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool) -> Iterator[tuple[str, int]]:
    daemon.remove(SMUGGLED_NAME)
    yield proxies.get(daemon.socket_path, RULES).addr
    daemon.remove(SMUGGLED_NAME)


def _smuggled(daemon: Daemon) -> bytes:
    body = {"Image": daemon.image, "Cmd": ["true"], "HostConfig": {"Privileged": True}}
    return json_request("POST", f"/containers/create?name={SMUGGLED_NAME}", body)


def _assert_not_smuggled(daemon: Daemon) -> None:
    holds_for(
        lambda: daemon.inspect(SMUGGLED_NAME) is None and daemon.privileged_containers() == [],
        0.3,
        "the smuggled request did not reach the daemon (no container, none privileged)",
    )


def test_denied_then_allowed_on_one_connection(daemon: Daemon, addr: tuple[str, int]) -> None:
    with RawConnection(*addr) as c:
        c.send(_smuggled(daemon))
        first = c.read_response()
        assert first.status == 403
        try:
            c.send(request_bytes("GET", "/containers/json"))
            rest = c.read_responses(1)
        except OSError:
            rest = []
    # After a deny the connection either stays usable or is closed; never out of step.
    if rest:
        assert rest[0].status == 200 and isinstance(rest[0].json(), list)
    _assert_not_smuggled(daemon)


def test_denied_body_is_not_parsed_as_a_request(daemon: Daemon, addr: tuple[str, int]) -> None:
    inner = request_bytes("GET", "/_ping")
    outer = request_bytes(
        "POST", "/containers/create", headers={"Content-Type": "application/json"}, body=inner
    )
    with RawConnection(*addr) as c:
        c.send(outer + request_bytes("GET", "/version"))
        rs = c.read_responses(2)
        c.sock.settimeout(0.5)
        rs += c.read_responses(1)  # a third answer would mean the body was taken as a request
    assert rs[0].status in (400, 403)
    assert len(rs) <= 2, [r.status for r in rs]
    for r in rs[1:]:
        assert r.body != b"OK", "the denied request's body was answered as a request"
        assert r.status == 200 and "ApiVersion" in r.json()


def test_pipelined_requests_answered_in_order(addr: tuple[str, int]) -> None:
    data = (
        request_bytes("GET", "/_ping")
        + request_bytes("GET", "/version")
        + request_bytes("GET", "/containers/json?all=1")
    )
    with RawConnection(*addr) as c:
        c.send(data)
        rs = c.read_responses(3)
    assert [r.status for r in rs] == [200, 200, 200]
    assert rs[0].body == b"OK"
    assert "ApiVersion" in rs[1].json()
    assert isinstance(rs[2].json(), list)


def test_pipelined_deny_in_the_middle(daemon: Daemon, addr: tuple[str, int]) -> None:
    data = request_bytes("GET", "/_ping") + _smuggled(daemon) + request_bytes("GET", "/version")
    with RawConnection(*addr) as c:
        c.send(data)
        rs = c.read_responses(3)
    assert [r.status for r in rs][:2] == [200, 403]
    if len(rs) == 3:
        assert rs[2].status == 200 and "ApiVersion" in rs[2].json()
    _assert_not_smuggled(daemon)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _cl_te(daemon: Daemon) -> bytes:
    body = b"0\r\n\r\n" + _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
    ) + body


def _te_cl(daemon: Daemon) -> bytes:
    smuggled = _smuggled(daemon)
    body = _chunk(smuggled) + b"0\r\n\r\n"
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
    ) + body


def _te_variant(te_header: bytes) -> Callable[[Daemon], bytes]:
    def build(daemon: Daemon) -> bytes:
        body = b"0\r\n\r\n" + _smuggled(daemon)
        return (
            b"GET /containers/json HTTP/1.1\r\nHost: d\r\n"
            b"Content-Length: %d\r\n" % len(body) + te_header + b"\r\n\r\n" + body
        )

    return build


def _dup_cl(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n"
        b"Content-Length: %d\r\n\r\n" % len(s)
    ) + s


def _dup_cl_list(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nContent-Length: 0, %d\r\n\r\n" % len(s)
    ) + s


def _cl_plus(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (b"GET /containers/json HTTP/1.1\r\nHost: d\r\nContent-Length: +%d\r\n\r\n" % len(s)) + s


def _bare_lf_header(daemon: Daemon) -> bytes:
    # To a lenient parser "X: y\nContent-Length: N" is one header (no body) or two (a body).
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nX: y\nContent-Length: %d\r\n\r\n" % len(s)
    ) + s


def _bare_lf_request(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (b"GET /containers/json HTTP/1.1\nHost: d\nContent-Length: %d\n\n" % len(s)) + s


def _bare_cr(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nX: y\rContent-Length: %d\r\n\r\n" % len(s)
    ) + s


def _obs_fold(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nX-Pad: a\r\n Content-Length: %d\r\n\r\n"
        % len(s)
    ) + s


def _obs_fold_te(daemon: Daemon) -> bytes:
    body = b"0\r\n\r\n" + _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding:\r\n chunked\r\n\r\n" % len(body)
    ) + body


def _space_before_colon(daemon: Daemon) -> bytes:
    body = b"0\r\n\r\n" + _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n"
        b"Transfer-Encoding : chunked\r\n\r\n" % len(body)
    ) + body


def _chunk_ext_lf(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    inner = b"0\n\r\n" + s  # chunk-size line ended by bare LF
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
        + inner
        + b"\r\n0\r\n\r\n"
    )


def _http10_te(daemon: Daemon) -> bytes:
    body = b"0\r\n\r\n" + _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.0\r\nHost: d\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body


def _nul_in_header(daemon: Daemon) -> bytes:
    s = _smuggled(daemon)
    return (
        b"GET /containers/json HTTP/1.1\r\nHost: d\r\nX: a\x00b\r\nContent-Length: %d\r\n\r\n"
        % len(s)
    ) + s


ATTACKS = {
    "cl-te": _cl_te,
    "te-cl": _te_cl,
    "te-chunked-identity": _te_variant(b"Transfer-Encoding: chunked, identity"),
    "te-identity-chunked": _te_variant(b"Transfer-Encoding: identity, chunked"),
    "te-xchunked": _te_variant(b"Transfer-Encoding: xchunked"),
    "te-uppercase": _te_variant(b"Transfer-Encoding: CHUNKED"),
    "te-twice": _te_variant(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
    "te-tab": _te_variant(b"Transfer-Encoding:\tchunked"),
    "te-space-before-colon": _space_before_colon,
    "duplicate-cl": _dup_cl,
    "cl-list": _dup_cl_list,
    "cl-plus-sign": _cl_plus,
    "bare-lf-header": _bare_lf_header,
    "bare-lf-request": _bare_lf_request,
    "bare-cr": _bare_cr,
    "obs-fold": _obs_fold,
    "obs-fold-te": _obs_fold_te,
    "chunk-size-bare-lf": _chunk_ext_lf,
    "http10-te": _http10_te,
    "nul-in-header": _nul_in_header,
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_smuggling_is_rejected_and_nothing_forwarded(
    daemon: Daemon, addr: tuple[str, int], name: str
) -> None:
    data = ATTACKS[name](daemon)
    with RawConnection(*addr) as c:
        c.send(data)
        rs = c.read_responses(3)
    assert rs, "no answer at all"
    assert rs[0].status == 400, (name, [r.status for r in rs], rs[0].body[:200])
    assert rs[0].message, "400 without Docker's JSON error shape"
    # The smuggled create must not have been answered as a second request either.
    assert all(r.status != 201 for r in rs)
    _assert_not_smuggled(daemon)


def test_proxy_still_serves_after_attacks(addr: tuple[str, int]) -> None:
    with RawConnection(*addr) as c:
        c.send(request_bytes("GET", "/_ping"))
        assert c.read_response().body == b"OK"


def test_http10_closes_after_response(addr: tuple[str, int]) -> None:
    with RawConnection(*addr) as c:
        c.send(request_bytes("GET", "/_ping", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200
        assert c.is_closed(3.0)


def test_expect_continue_on_denied_request(daemon: Daemon, addr: tuple[str, int]) -> None:
    body = json.dumps({"Image": daemon.image, "HostConfig": {"Privileged": True}}).encode()
    head = request_bytes(
        "POST",
        f"/containers/create?name={SMUGGLED_NAME}",
        headers={
            "Content-Type": "application/json",
            "Expect": "100-continue",
            "Content-Length": str(len(body)),
        },
    )
    with RawConnection(*addr) as c:
        c.send(head)
        r = c.read_response()
        if r.status == 100:
            c.send(body)
            r = c.read_response()
    assert r.status == 403
    _assert_not_smuggled(daemon)
