"""A recording fake Engine API daemon on a real unix socket (an asyncio server in its own thread).

It reads requests the way Go's net/http server does (lines may end in a bare LF, Transfer-Encoding
chunked wins over Content-Length, the handler starts once the head is in) and records each one,
head and body, before answering; anything a Go server would read differently from a clean HTTP/1.1
message is noted as an anomaly for the oracle. Answers look like dockerd's or Podman's (the
/_ping headers and /version body differ), enough for the proxy's lookups and relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.catalogue.operations import match_operation
from tests.fuzz.goreading import (
    Engine,
    Flavour,
    Unreadable,
    api_path,
    decoded_path,
    query_reading,
    query_values,
    split_target,
)
from tests.fuzz.world import CONTAINERS, EXECS, FakeContainer, exec_container, resolve

HEAD_LIMIT = 1 << 20


@dataclass
class Recorded:
    """One request as the daemon received it."""

    conn: int
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]  # (lower-case name, value) in order
    body: bytes = b""
    complete: bool = False  # the whole body arrived
    anomalies: list[str] = field(default_factory=list)
    stream: bytes = b""  # bytes after a hijack (stdin of the attach/exec), never requests

    def header(self, name: str) -> str | None:
        """Go's Header.Get: the first copy."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def case(self) -> int | None:
        marker = self.header("x-fuzz-case")
        return int(marker) if marker is not None and _digits(marker) else None

    def describe(self) -> str:
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers)
        return f"{self.method} {self.target} {self.version}\r\n{head}\r\n" + self.body.decode(
            "utf-8", "replace"
        )


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class _Closed(Exception):
    pass


def _ping_headers(flavour: Flavour) -> list[tuple[str, str]]:
    if flavour == "unknown":
        return [("Api-Version", "1.41"), ("Server", "engine/1.0")]
    if flavour == "docker":
        return [("Api-Version", "1.47"), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                ("Server", "Docker/27.3.1 (linux)")]  # fmt: skip
    return [("Api-Version", "1.41"), ("Libpod-Api-Version", "4.3.1"),
            ("Libpod-Buildah-Version", "1.28.2"), ("Server", "Libpod/4.3.1 (linux)")]  # fmt: skip


def _version(flavour: Flavour) -> dict[str, Any]:
    if flavour == "unknown":
        return {"Components": [{"Name": "Daemon", "Version": "1.0"}], "Version": "1.0",
                "ApiVersion": "1.41", "Os": "linux"}  # fmt: skip
    if flavour == "docker":
        return {"Platform": {"Name": "Docker Engine - Community"},
                "Components": [{"Name": "Engine", "Version": "27.3.1"}],
                "Version": "27.3.1", "ApiVersion": "1.47", "MinAPIVersion": "1.24", "Os": "linux"}  # fmt: skip
    return {"Platform": {"Name": "linux/amd64/debian-12"},
            "Components": [{"Name": "Podman Engine", "Version": "4.3.1",
                            "Details": {"APIVersion": "4.3.1", "MinAPIVersion": "4.0.0"}}],
            "Version": "4.3.1", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "Os": "linux"}  # fmt: skip


def _inspect(c: FakeContainer) -> dict[str, Any]:
    return {
        "Id": c.id,
        "Name": "/" + c.name,
        "Image": "sha256:" + "f" * 64,
        "State": {"Status": "running", "Running": True},
        "Config": {"Image": c.image, "Labels": c.labels, "Env": list(c.env)},
        "HostConfig": {"NetworkMode": "bridge"},
    }


def _summary(c: FakeContainer) -> dict[str, Any]:
    return {"Id": c.id, "Names": ["/" + c.name], "Image": c.image, "Labels": c.labels,
            "State": "running"}  # fmt: skip


class FakeDaemon:
    """Start with start(); every request lands in `records` (guarded by `lock`)."""

    def __init__(self, socket_path: str, flavour: Flavour) -> None:
        self.socket_path = socket_path
        self.flavour = flavour
        # how it routes and reads queries: an unknown engine is taken as the looser, Podman
        self.engine: Engine = "docker" if flavour == "docker" else "podman"
        self.records: list[Recorded] = []
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._conns = 0

    def start(self) -> FakeDaemon:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        fut.result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, self.socket_path, limit=HEAD_LIMIT
        )

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def snapshot(self, since: int = 0) -> list[Recorded]:
        with self.lock:
            return list(self.records[since:])

    # -- the wire ---------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns += 1
        conn = self._conns
        try:
            while await self._one(conn, reader, writer):
                pass
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _line(self, reader: asyncio.StreamReader, rec: Recorded) -> str:
        raw = await reader.readuntil(b"\n")
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        else:
            raw = raw[:-1]
            rec.anomalies.append("bare LF line ending")
        if b"\r" in raw:
            rec.anomalies.append("bare CR in a line")
        return raw.decode("latin-1")

    async def _one(
        self, conn: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        rec = Recorded(conn, "", "", "", [])
        try:
            first = await self._line(reader, rec)
        except asyncio.IncompleteReadError:
            return False
        parts = first.split(" ")
        rec.target = first
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            rec.anomalies.append(f"unparseable request line {first[:80]!r}")
            self._record(rec)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            return False
        rec.method, rec.target, rec.version = parts
        while True:
            line = await self._line(reader, rec)
            if not line:
                break
            if line[:1] in (" ", "\t"):
                rec.anomalies.append("obs-fold continuation line")
            name, colon, value = line.partition(":")
            if not colon or name != name.strip():
                rec.anomalies.append(f"malformed header line {line[:80]!r}")
            rec.headers.append((name.strip().lower(), value.strip(" \t")))
        self._check_framing(rec)
        self._record(rec)  # Go's handler starts here; the body is read as the handler reads it
        await self._read_body(rec, reader)
        keep = rec.version == "HTTP/1.1" and "close" not in (rec.header("connection") or "").lower()
        return await self._answer(rec, reader, writer) and keep

    def _record(self, rec: Recorded) -> None:
        with self.lock:
            self.records.append(rec)

    @staticmethod
    def _check_framing(rec: Recorded) -> None:
        for name in ("host", "content-length", "transfer-encoding", "content-type", "upgrade"):
            if len(rec.values(name)) > 1:
                rec.anomalies.append(f"repeated {name} header")
        if rec.header("transfer-encoding") is not None and rec.header("content-length") is not None:
            rec.anomalies.append("both Content-Length and Transfer-Encoding")
        te = rec.header("transfer-encoding")
        if te is not None and te != "chunked":
            rec.anomalies.append(f"Transfer-Encoding {te!r}")
        cl = rec.header("content-length")
        if cl is not None and not _digits(cl):
            rec.anomalies.append(f"Content-Length {cl!r}")

    async def _read_body(self, rec: Recorded, reader: asyncio.StreamReader) -> None:
        if rec.header("transfer-encoding") == "chunked":
            chunks: list[bytes] = []
            while True:
                size_line = await self._line(reader, rec)
                try:
                    size = int(size_line.split(";")[0].strip() or "0", 16)
                except ValueError:
                    size = -1
                if size < 0:
                    rec.anomalies.append(f"bad chunk size {size_line[:40]!r}")
                    raise _Closed
                if size == 0:
                    while await self._line(reader, rec):
                        pass  # trailers
                    break
                chunks.append(await reader.readexactly(size))
                rec.body = b"".join(chunks)
                await self._line(reader, rec)
            rec.body = b"".join(chunks)
        else:
            cl = rec.header("content-length") or "0"
            rec.body = await reader.readexactly(int(cl) if _digits(cl) else 0)
        rec.complete = True

    # -- answers ----------------------------------------------------------------------------
    async def _answer(
        self, rec: Recorded, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        answer = self.answer(rec)
        if answer is None:
            await self._hijack(rec, reader, writer)
            return False
        writer.write(answer)
        return True

    def answer(self, rec: Recorded) -> bytes | None:
        """The whole response to a request, or None for a hijack (attach, exec start)."""
        path, query = split_target(rec.target)
        try:
            api = api_path(decoded_path(path), self.engine)
        except Unreadable:
            return _response(400, {"message": "bad path"})
        if api.startswith("/libpod/"):
            api = api[len("/libpod") :]
        matched = match_operation(rec.method, api)
        if matched is None:
            return _response(404, {"message": "page not found"})
        name, kind = matched.op.name, matched.op.target
        fixed = self._fixed(name, rec, query)
        if fixed is not None:
            return fixed
        ref = matched.params.get("id", "")
        params = query_reading(query_values(query), self.engine)
        target = exec_container(ref) if kind == "exec" else resolve(ref)
        if kind in ("exec", "container") and target is None:
            what = "exec instance" if kind == "exec" else "container"
            return _response(404, {"message": f"No such {what}: {ref}"})
        if target is not None:
            by_target: dict[str, Callable[[FakeContainer], dict[str, Any]]] = {
                "exec.inspect": lambda c: {"ID": ref, "ContainerID": c.id, "Running": False},
                "containers.inspect": _inspect,
                "exec.create": lambda c: {"Id": _exec_of(c)},
                "containers.wait": lambda c: {"StatusCode": 0},
                "containers.top": lambda c: _top(c, params.get("ps_args", "")),
            }
            if name in by_target:
                return _response(201 if name == "exec.create" else 200, by_target[name](target))
        if matched.op.hijack:
            return None
        if rec.method == "GET":
            return _response(200, {})
        return b"HTTP/1.1 204 No Content\r\n\r\n"

    def _fixed(self, name: str, rec: Recorded, query: str) -> bytes | None:
        """Answers that name no target: ping, version, lists, events, create."""
        if name == "system.ping":
            body = b"" if rec.method == "HEAD" else b"OK"
            return _raw(200, body, "text/plain; charset=utf-8", _ping_headers(self.flavour))
        if name == "system.version":
            return _response(200, _version(self.flavour))
        if name == "containers.list":
            return _chunked(200, [_summary(c) for c in CONTAINERS])
        if name == "system.events":
            events = [{"Type": "container", "Action": "start", "Actor": {"ID": c.id,
                       "Attributes": {"name": c.name, **c.labels}}} for c in CONTAINERS]  # fmt: skip
            return _chunked(200, events, lines=True)
        if name == "containers.create":
            wanted = query_reading(query_values(query), self.engine).get("name", "").lstrip("/")
            taken = resolve(wanted) if wanted else None
            if taken is not None and taken.name == wanted:
                # dockerd's own text names the container that holds the name
                msg = f'Conflict. The container name "/{wanted}" is already in use by container "{taken.id}".'
                return _response(409, {"message": msg})
            return _response(201, {"Id": "d" * 64, "Warnings": []})
        return None

    async def _hijack(
        self, rec: Recorded, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Attach and exec start: a 101 (or Docker's raw-stream 200), a line of output, then
        stdin is read to EOF (recorded, never parsed as requests) and the stream closes."""
        ctype = "Content-Type: application/vnd.docker.raw-stream\r\n"
        if (rec.header("upgrade") or "").lower() == "tcp":
            writer.write(
                b"HTTP/1.1 101 UPGRADED\r\n" + ctype.encode() + b"Connection: Upgrade\r\n"
                b"Upgrade: tcp\r\n\r\nhello\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\n" + ctype.encode() + b"\r\nhello\n")
        await writer.drain()
        while data := await reader.read(65536):
            rec.stream += data
        with contextlib.suppress(Exception):
            writer.write_eof()
        await writer.drain()


def _top(c: FakeContainer, ps_args: str) -> dict[str, Any]:
    """ps output; BSD-style options (a word without '-') with an 'e' print each process's
    environment (`-e` is "every process")."""
    env = any("e" in word for word in ps_args.split() if not word.startswith("-"))
    cmd = "sleep 60" + ("".join(" " + e for e in c.env) if env else "")
    return {"Titles": ["UID", "PID", "CMD"], "Processes": [["root", "1", cmd]]}


def _exec_of(c: FakeContainer) -> str:
    return next((e for e, cid in EXECS.items() if cid == c.id), "e0" * 32)


def _raw(status: int, body: bytes, ctype: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _response(status: int, doc: Any) -> bytes:
    return _raw(status, json.dumps(doc).encode() + b"\n", "application/json")


def _chunked(status: int, docs: list[Any], *, lines: bool = False) -> bytes:
    """A chunked JSON answer (a list, or one object per chunk for event streams)."""
    parts = [json.dumps(d).encode() + b"\n" for d in docs] if lines else [json.dumps(docs).encode()]
    out = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return out.encode() + body + b"0\r\n\r\n"
