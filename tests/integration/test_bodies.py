"""Class 4: bodies are read the way dockerd reads them. Every spelling of a privileged create
below must leave NO privileged container on the daemon (checked directly on its socket)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import RawConnection, call, request_bytes
from tests.support.waiting import holds_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [
    {"allow": ["containers.create", "containers.list", "containers.inspect", "system.ping"]},
]
MAX_BODY = 4096
NAME = "bodytest"


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool) -> Iterator[tuple[str, int]]:
    daemon.remove(NAME)
    yield proxies.get(daemon.socket_path, RULES, limits={"maxBodyBytes": MAX_BODY}).addr
    daemon.remove(NAME)


def _fill(template: str, daemon: Daemon, **extra: str) -> bytes:
    """The raw JSON text with IMG replaced by the engine's image (and KEY/PAD by extras)."""
    text = template.replace("IMG", json.dumps(daemon.image))
    for k, v in extra.items():
        text = text.replace(k, v)
    return text.encode("utf-8")


def _nothing_privileged(daemon: Daemon) -> bool:
    doc = daemon.inspect(NAME)
    hc = (doc or {}).get("HostConfig") or {}
    return (
        not hc.get("Privileged")
        and "/:/host" not in (hc.get("Binds") or [])
        and daemon.privileged_containers() == []
    )


def _assert_nothing_privileged(daemon: Daemon) -> None:
    holds_for(lambda: _nothing_privileged(daemon), 0.2, "no privileged container created")
    doc = daemon.inspect(NAME)
    if doc is not None:
        hc = doc.get("HostConfig") or {}
        assert not hc.get("Privileged"), "privileged container created through the proxy"
        assert "/:/host" not in (hc.get("Binds") or []), "host root bound through the proxy"
    assert daemon.privileged_containers() == []


def _post_create(addr: tuple[str, int], raw: bytes, headers: dict[str, str] | None = None) -> int:
    hdrs = {"Content-Type": "application/json"} if headers is None else headers
    with RawConnection(*addr) as c:
        c.send(request_bytes("POST", f"/containers/create?name={NAME}", headers=hdrs, body=raw))
        rs = c.read_responses(1)
    return rs[0].status if rs else 0


def test_plain_create_is_allowed(daemon: Daemon, addr: tuple[str, int]) -> None:
    r = call(
        addr, "POST", f"/containers/create?name={NAME}", {"Image": daemon.image, "Cmd": ["true"]}
    )
    assert r.status == 201, r.body[:300]
    assert daemon.inspect(NAME) is not None


SPELLINGS = {
    "plain": '{"Image":IMG,"HostConfig":{"Privileged":true}}',
    "lowercase-keys": '{"image":IMG,"hostconfig":{"privileged":true}}',
    "uppercase-keys": '{"IMAGE":IMG,"HOSTCONFIG":{"PRIVILEGED":true}}',
    "mixed-keys": '{"Image":IMG,"hostConfig":{"pRiViLeGeD":true}}',
    "duplicate-last-wins": '{"Image":IMG,"HostConfig":{"Privileged":false,"Privileged":true}}',
    "duplicate-case-variants": '{"Image":IMG,"HostConfig":{"Privileged":false,"privileged":true}}',
    # Go decodes a repeated object key INTO the struct it already filled: the fields merge.
    "duplicate-hostconfig-merges": '{"Image":IMG,"HostConfig":{"Privileged":true},"HostConfig":{"Memory":0}}',
    "duplicate-hostconfig-case": '{"Image":IMG,"HostConfig":{"Privileged":true},"hostconfig":{}}',
    "unicode-escape-key": '{"Image":IMG,"HostConfig":{"Privil\\u0065ged":true}}',
    "unicode-escape-all": '{"Image":IMG,"\\u0048ostConfig":{"\\u0050\\u0072ivileged":true}}',
    "whitespace": '{ "Image" : IMG ,\n\t"HostConfig" :\r\n { "Privileged" :true } }',
    "trailing-garbage": '{"Image":IMG,"HostConfig":{"Privileged":true}} trailing',
    "second-value": '{"Image":IMG,"HostConfig":{"Privileged":true}}{"HostConfig":{}}',
    "nested-in-config": '{"Image":IMG,"HostConfig":{"Privileged":true},"Config":{}}',
}


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_privileged_spellings_never_create_privileged(
    daemon: Daemon, addr: tuple[str, int], name: str
) -> None:
    raw = _fill(SPELLINGS[name], daemon)
    status = _post_create(addr, raw)
    assert status in (400, 403), status
    _assert_nothing_privileged(daemon)


@pytest.mark.parametrize(
    "key",
    [
        "Bind\u017f",  # U+017F LATIN SMALL LETTER LONG S folds to 's' in Go's EqualFold
        "BIND\u017f",
        "binds",
        "Bi\\u006eds",
    ],
)
def test_binds_spellings_never_bind_host_root(
    daemon: Daemon, addr: tuple[str, int], key: str
) -> None:
    raw = _fill('{"Image":IMG,"HostConfig":{"KEY":["/:/host"]}}', daemon, KEY=key)
    status = _post_create(addr, raw)
    assert status in (400, 403), status
    _assert_nothing_privileged(daemon)


def test_kelvin_sign_and_long_s_in_other_fields(daemon: Daemon, addr: tuple[str, int]) -> None:
    # "\u017fecurityOpt" is SecurityOpt to Go; "CapAdd" has no s/k, so use Devices' 's'.
    raw = _fill(
        '{"Image":IMG,"HostConfig":{"\u017fecurityOpt":["seccomp=unconfined"],'
        '"Device\u017f":[{"PathOnHost":"/dev/mem","PathInContainer":"/dev/mem","CgroupPermissions":"rwm"}]}}',
        daemon,
    )
    assert _post_create(addr, raw) in (400, 403)
    holds_for(lambda: daemon.inspect(NAME) is None, 0.2, f"no container {NAME} created")


def _chunked(raw: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(raw), size):
        piece = raw[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunked_privileged_create(daemon: Daemon, addr: tuple[str, int], chunk: int) -> None:
    raw = _fill('{"Image":IMG,"HostConfig":{"Privileged":true}}', daemon)
    data = request_bytes(
        "POST",
        f"/containers/create?name={NAME}",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    with RawConnection(*addr) as c:
        c.send(data + _chunked(raw, chunk))
        rs = c.read_responses(1)
    assert rs and rs[0].status in (400, 403), rs[0].status if rs else "closed"
    _assert_nothing_privileged(daemon)


def test_chunked_plain_create_is_allowed(daemon: Daemon, addr: tuple[str, int]) -> None:
    raw = _fill('{"Image":IMG,"Cmd":["true"]}', daemon)
    data = request_bytes(
        "POST",
        f"/containers/create?name={NAME}",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    with RawConnection(*addr) as c:
        c.send(data + _chunked(raw, 5))
        r = c.read_response()
    assert r.status == 201, r.body[:300]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json; charset=utf-8; x=y"},
        {"Content-Type": "APPLICATION/JSON"},
        {"Content-Type": "application/json;charset=utf-8"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/jsonx"},
        {},
    ],
    ids=["params", "upper", "charset", "text", "form", "jsonx", "none"],
)
def test_content_type_variants_still_checked(
    daemon: Daemon, addr: tuple[str, int], headers: dict[str, str]
) -> None:
    raw = _fill('{"Image":IMG,"HostConfig":{"Privileged":true}}', daemon)
    status = _post_create(addr, raw, headers)
    assert status in (400, 403, 415), status
    _assert_nothing_privileged(daemon)


def test_content_type_with_params_allows_a_plain_create(
    daemon: Daemon, addr: tuple[str, int]
) -> None:
    raw = _fill('{"Image":IMG,"Cmd":["true"]}', daemon)
    status = _post_create(addr, raw, {"Content-Type": "application/json; charset=utf-8; x=y"})
    assert status == 201


def test_oversize_body_is_413(daemon: Daemon, addr: tuple[str, int]) -> None:
    pad = "x" * (MAX_BODY * 2)
    raw = _fill(
        '{"Image":IMG,"Env":["PAD=XPAD"],"HostConfig":{"Privileged":true}}', daemon, XPAD=pad
    )
    assert _post_create(addr, raw) == 413
    _assert_nothing_privileged(daemon)
    assert daemon.inspect(NAME) is None


def test_oversize_chunked_body_is_413(daemon: Daemon, addr: tuple[str, int]) -> None:
    pad = "x" * (MAX_BODY * 2)
    raw = _fill(
        '{"Image":IMG,"Env":["PAD=XPAD"],"HostConfig":{"Privileged":true}}', daemon, XPAD=pad
    )
    head = request_bytes(
        "POST",
        f"/containers/create?name={NAME}",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    with RawConnection(*addr) as c:
        c.send(head + _chunked(raw, 1000))
        rs = c.read_responses(1)
    assert rs and rs[0].status == 413
    _assert_nothing_privileged(daemon)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"Image": "bb:latest", "HostConfig": {"Privileged": tru}}',
        b"\xff\xfe{}",
        b'{"Image":"bb:latest","HostConfig":{"Privileged":true}',
        b"[]",
        b'"string"',
        b'{"Image":"bb:latest","HostConfig":{"Privileged":"\xff"}}',
        b'{"Image":"bb:latest","HostConfig":{"Privileged":1}}',
        b'{"Image":"bb:latest","HostConfig":[{"Privileged":true}]}',
    ],
)
def test_garbage_bodies_are_400(daemon: Daemon, addr: tuple[str, int], raw: bytes) -> None:
    status = _post_create(addr, raw)
    assert status in (400, 403), status
    _assert_nothing_privileged(daemon)


def test_empty_body_create_is_not_privileged(daemon: Daemon, addr: tuple[str, int]) -> None:
    status = _post_create(addr, b"")
    # The proxy may refuse it or let the daemon refuse it (dockerd 20.10 answers 500).
    assert status >= 400, status
    assert daemon.inspect(NAME) is None


def test_error_is_docker_json(addr: tuple[str, int]) -> None:
    r = call(addr, "POST", f"/containers/create?name={NAME}", raw=b"{not json")
    assert r.status == 400
    assert re.match(r"application/json", r.header("Content-Type") or "")
    assert r.message
