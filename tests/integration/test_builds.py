"""The request path runs compiled (mypyc, setup.py) where `make compiled` built it, and as
pure Python from the same source wherever it did not (a plain `pip install`). The suites run
whichever build the tree holds (CI: compiled); here the pure-Python build of the same source
is started beside it and must answer every request below byte for byte as it does."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyProcess, policy_document
from tests.support.rawhttp import RawConnection, json_request, request_bytes

pytestmark = pytest.mark.docker

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "docker_socket_operator"
RULES = [{"allow": ["system.ping", "containers.list", "containers.create"]}]

REQUESTS = [
    request_bytes("GET", "/_ping"),
    request_bytes(
        "GET", "/v1.41/containers/json?all=1&filters=%7B%22name%22%3A%5B%22nomatch%22%5D%7D"
    ),
    request_bytes("POST", "/containers/x/kill"),  # not allowed: 403 from the policy
    json_request(
        "POST",
        "/containers/create",
        {"Image": "bb:latest", "HostConfig": {"Privileged": True, "Binds": ["/:/host"]}},
    ),
    json_request("POST", "/containers/create", raw=b'{"Image": "bb", "Image": "other"}'),
    b"GET /_ping HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /../_ping HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n\n",  # a bare-LF blank line (mypyc's bytes slice once failed here)
    b"GET /_ping HTTP/1.1\r\nHost: a\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n",
]


def _status_and_message(p: ProxyProcess, data: bytes) -> tuple[int, bytes]:
    with RawConnection(*p.addr, timeout=10) as c:
        c.send(data)
        r = c.read_response()
    # Date and the daemon's own per-request headers differ between two answers; the status and
    # the body are what a client acts on.
    return r.status, r.body


def _head_timeout_answer(p: ProxyProcess) -> bytes:
    with socket.create_connection(p.addr, timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: a\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.fixture
def builds(dockerd: Daemon, tmp_path: Path) -> Iterator[dict[str, ProxyProcess]]:
    pure = tmp_path / "pure"
    shutil.copytree(
        PACKAGE,
        pure / "docker_socket_operator",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    procs: dict[str, ProxyProcess] = {}
    try:
        for name, env in (("tree", {}), ("python", {"PYTHONPATH": str(pure)})):
            procs[name] = ProxyProcess(
                dockerd.socket_path,
                tmp_path / name,
                policy=policy_document(RULES),
                env=env,
                extra_args=["--head-timeout", "1"],
            ).start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def test_the_pure_python_build_answers_as_the_tree_build(builds: dict[str, ProxyProcess]) -> None:
    compiled_here = any(PACKAGE.rglob("proxy/*.so"))
    assert builds["tree"].ready_info["build"] == ("compiled" if compiled_here else "python")
    assert builds["python"].ready_info["build"] == "python"
    for data in REQUESTS:
        tree = _status_and_message(builds["tree"], data)
        assert tree == _status_and_message(builds["python"], data), data[:80]
    statuses = {_status_and_message(builds["tree"], data)[0] for data in REQUESTS}
    assert statuses >= {200, 400, 403, 431}, statuses  # the requests reach every kind of answer
    tree_408 = _head_timeout_answer(builds["tree"])
    assert tree_408.startswith(b"HTTP/1.1 408 "), tree_408
    assert tree_408 == _head_timeout_answer(builds["python"])
