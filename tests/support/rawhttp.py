"""A raw HTTP/1.1 client for crafted requests: exact bytes out, every response on the
connection parsed back (Content-Length, chunked, or read to close).

Real clients normalise what they send; smuggling, odd methods, dot segments and
pipelining need the bytes as written.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from tests.support.waiting import wait_for


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def message(self) -> str:
        try:
            doc = self.json()
        except ValueError:
            return self.body.decode(errors="replace")
        return str(doc.get("message", "")) if isinstance(doc, dict) else str(doc)


class ConnectionClosed(EOFError):
    pass


class RawConnection:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.closed_by_peer = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            return False
        self.buf += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise ConnectionClosed(f"closed before {marker!r}; have {self.buf[:200]!r}")
        head, _, self.buf = self.buf.partition(marker)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(f"closed with {len(self.buf)}/{n} body bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_request: bool = False) -> RawResponse:
        """One response; ``head_request`` means no body follows whatever the headers say."""
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError(f"not an HTTP response: {lines[0]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = [(k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:] if x)]
        resp = RawResponse(status, reason, headers)
        if head_request or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._read_until(b"\r\n")  # no trailers expected from dockerd
                    break
                body += self._read_exact(size)
                self._read_exact(2)
            resp.body = body
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def read_responses(self, n: int) -> list[RawResponse]:
        """Up to ``n`` responses; fewer when the peer closes the connection first."""
        out: list[RawResponse] = []
        for _ in range(n):
            try:
                out.append(self.read_response())
            except (ConnectionClosed, TimeoutError, OSError):
                break
        return out

    def is_closed(self, wait: float = 2.0) -> bool:
        """True when the peer has closed (EOF) within ``wait`` seconds and sent nothing more."""
        self.sock.settimeout(wait)
        try:
            return not self._fill()
        except TimeoutError:
            return False


def request_bytes(
    method: str,
    target: str,
    *,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """A well-formed request (Host and Content-Length added unless given)."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if "host" not in names:
        hdrs.insert(0, ("Host", "docker"))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    out = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    return out.encode("latin-1") + (body or b"")


def json_request(method: str, target: str, doc: Any = None, raw: bytes | None = None) -> bytes:
    body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else None)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return request_bytes(method, target, headers=headers, body=body)


def exchange(
    host: str, port: int, data: bytes, n: int = 1, timeout: float = 10.0
) -> list[RawResponse]:
    """Send ``data`` on a fresh connection and read up to ``n`` responses."""
    with RawConnection(host, port, timeout) as c:
        c.send(data)
        return c.read_responses(n)


def one(host: str, port: int, data: bytes, timeout: float = 10.0) -> RawResponse:
    resps = exchange(host, port, data, 1, timeout)
    assert resps, f"no response to {data[:120]!r}"
    return resps[0]


def call(
    addr: tuple[str, int],
    method: str,
    target: str,
    doc: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> RawResponse:
    """One request on its own connection (``doc`` is sent as JSON)."""
    hdrs = dict(headers or {})
    body = raw if raw is not None else (json.dumps(doc).encode() if doc is not None else None)
    if body is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    if method == "POST" and body is None:
        hdrs.setdefault("Content-Length", "0")
    data = request_bytes(method, target, headers=hdrs, body=body)
    with RawConnection(*addr, timeout=timeout) as c:
        c.send(data)
        return c.read_response(head_request=method == "HEAD")


def wait_status(addr: tuple[str, int], target: str, want: int, timeout: float = 4.0) -> None:
    """Wait until `GET target` answers `want` (a reloaded policy took effect)."""
    wait_for(
        lambda: call(addr, "GET", target).status == want, timeout, f"GET {target} to answer {want}"
    )


def assert_blocked(resp: RawResponse) -> None:
    """A policy denial as the contract shapes it: 403, JSON, "blocked by policy: ..."."""
    assert resp.status == 403, (resp.status, resp.body[:300])
    assert resp.message.startswith("blocked by policy"), resp.body[:300]


def assert_refused(resp: RawResponse, allowed: tuple[int, ...] = (400, 403)) -> None:
    """Not let through: one of the refusal statuses (never 1xx/2xx/3xx)."""
    assert resp.status in allowed, (resp.status, resp.body[:300])
