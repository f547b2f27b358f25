"""Fuzz cases from a seeded RNG (pure: the same seed gives the same bytes).

Each seed request (seeds.py) is mutated structurally (path, query, headers, framing, JSON keys
and values) and sometimes at the byte level, then several requests are pipelined on one
connection, spread over interleaved connections, or cut short.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fuzz.goreading import Engine
from tests.fuzz.seeds import HOST_POWER, Pairs, Request, pairs, seed_request

# -- structural mutations -----------------------------------------------------------------------


def _flip_case(rng: random.Random, s: str) -> str:
    return "".join(c.swapcase() if rng.random() < 0.4 else c for c in s)


def _fold_trick(rng: random.Random, key: str) -> str:
    """A key that Go's folding matches to the same field: case, U+017F for s, U+212A for k."""
    out = []
    for c in key:
        if c in "sS" and rng.random() < 0.6:
            out.append("\u017f")
        elif c in "kK" and rng.random() < 0.6:
            out.append("\u212a")
        else:
            out.append(c.swapcase() if rng.random() < 0.3 else c)
    return "".join(out)


def _walk_objects(value: Any, found: list[Pairs]) -> None:
    if isinstance(value, Pairs):
        found.append(value)
        for _, v in value:
            _walk_objects(v, found)
    elif isinstance(value, list):
        for v in value:
            _walk_objects(v, found)


def mutate_body(rng: random.Random, req: Request) -> None:
    if not isinstance(req.body, Pairs):
        return
    objects: list[Pairs] = []
    _walk_objects(req.body, objects)
    obj = rng.choice(objects)
    if not obj:
        return
    i = rng.randrange(len(obj))
    key, value = obj[i]
    op = rng.randrange(8)
    if op == 0:
        obj[i] = (_fold_trick(rng, key), value)
    elif op == 1:  # a duplicate with power, before or after the original
        power = rng.choice(HOST_POWER)
        dup = (_fold_trick(rng, power[0]) if rng.random() < 0.5 else power[0], power[1])
        obj.insert(rng.choice([i, i + 1, len(obj)]), dup)
    elif op == 2:
        obj.insert(i + 1, (key, None))
    elif op == 3:  # type confusion
        obj[i] = (key, rng.choice(["true", 1, [value], Pairs([("x", value)]), None, "", -1, 1.5]))
    elif op == 4:
        req.escape_keys = True
    elif op == 5:
        obj.insert(i, (key, value))  # plain duplicate
    elif op == 6:
        obj.append(
            (rng.choice(["HostConfig", "hostconfig", "Hostconfig"]), pairs({"Privileged": True}))
        )
    else:
        obj[i] = (key + rng.choice(["\u0000", " ", "\t"]), value)


def mutate_target(rng: random.Random, req: Request) -> None:
    path, q, query = req.target.partition("?")
    op = rng.randrange(9)
    segs = path.split("/")
    j = rng.randrange(1, len(segs)) if len(segs) > 1 else 0
    if op == 0:
        segs.insert(j, rng.choice([".", "..", "", "x/.."]))
    elif op == 1:
        path = "/".join(segs) + "/"
        segs = path.split("/")
    elif op == 2 and segs[j]:
        k = rng.randrange(len(segs[j]))
        segs[j] = segs[j][:k] + f"%{ord(segs[j][k]):02{rng.choice('xX')}}" + segs[j][k + 1 :]
    elif op == 3:
        segs[j] = segs[j] + rng.choice(["%2F..", "%2fsecret", "%00", "%2e%2e"])
    elif op == 4:
        path = (
            rng.choice(
                ["/v1.41", "/v1..41", "/V1.41", "/v1.41/v1.41", "/v", "/libpod", "/v4.0.0/libpod"]
            )
            + path
        )
        segs = path.split("/")
    elif op == 5 and query and rng.random() < 0.5:
        query = _flip_case(rng, query.split("=")[0]) + "=" + query.partition("=")[2]
    elif op == 5:
        segs[j] = _flip_case(rng, segs[j])
    elif op == 6:
        query = query + "&" + rng.choice(["name=secret", "name=web-z", "name=%73ecret", "name=se+cret",
                                          "name=x;name=secret", "all=1&all=0", "name", "name=%zz"])  # fmt: skip
        q = "?"
    elif op == 7 and query:
        query = ";".join(query.split("&")) if rng.random() < 0.5 else query.replace("=", "%3D", 1)
    elif op == 8:
        query = "&".join(reversed(query.split("&"))) + "&" + query if query else "name=secret"
        q = "?"
    path = "/".join(segs) if op not in (1, 4) else path
    req.target = path + (q + query if q or query else "")


HEADER_GAMES: list[Callable[[random.Random, Request], None]] = []


def _header_game(
    fn: Callable[[random.Random, Request], None],
) -> Callable[[random.Random, Request], None]:
    HEADER_GAMES.append(fn)
    return fn


@_header_game
def _dup_header(rng: random.Random, req: Request) -> None:
    name = rng.choice(
        ["Content-Type", "Host", "Content-Length", "Transfer-Encoding", "Upgrade", "Connection"]
    )
    value = {"Content-Type": "application/x-www-form-urlencoded", "Host": "evil",
             "Content-Length": "0", "Transfer-Encoding": "chunked", "Upgrade": "tcp",
             "Connection": "close"}[name]  # fmt: skip
    req.headers.insert(rng.randrange(len(req.headers) + 1), (name, value))


@_header_game
def _header_case_space(rng: random.Random, req: Request) -> None:
    if req.headers:
        i = rng.randrange(len(req.headers))
        k, v = req.headers[i]
        req.headers[i] = (
            _flip_case(rng, k) + rng.choice(["", " ", "\t"]),
            rng.choice(["", " ", "\t"]) + v + rng.choice(["", " "]),
        )


@_header_game
def _te_games(rng: random.Random, req: Request) -> None:
    te = rng.choice(
        [
            "chunked",
            "Chunked",
            " chunked",
            "chunked, identity",
            "identity",
            "gzip, chunked",
            "chunked\t",
        ]
    )
    req.headers.append(("Transfer-Encoding", te))
    if rng.random() < 0.5:
        req.chunks = [rng.randrange(1, 40) for _ in range(rng.randrange(4))]


@_header_game
def _cl_games(rng: random.Random, req: Request) -> None:
    req.headers.append(
        (
            "Content-Length",
            rng.choice(["+5", "05", "-1", "5 ", "1e3", "0x10", "99999999999999999999"]),
        )
    )


@_header_game
def _odd_headers(rng: random.Random, req: Request) -> None:
    req.headers.append(rng.choice([
        ("X-HTTP-Method-Override", "DELETE"), ("Expect", "100-continue"), ("Expect", "nope"),
        ("Connection", "keep-alive, Upgrade"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAA"),
        ("Upgrade", "websocket"), ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Type", "text/plain"), ("Connection", "close"), ("X-Registry-Auth", "e30="),
    ]))  # fmt: skip


@_header_game
def _form_body(rng: random.Random, req: Request) -> None:
    req.headers = [(k, v) for k, v in req.headers if k.lower() != "content-type"]
    req.headers.append(
        (
            "Content-Type",
            rng.choice(
                [
                    "application/x-www-form-urlencoded",
                    "Application/X-WWW-Form-Urlencoded; charset=x",
                ]
            ),
        )
    )
    req.body = rng.choice([b"name=secret", b"name=secret2&force=1"])


def mutate(rng: random.Random, req: Request) -> None:
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        pick = rng.randrange(12)
        if pick < 6:
            mutate_body(rng, req)
        elif pick < 8:
            mutate_target(rng, req)
        elif pick < 11:
            rng.choice(HEADER_GAMES)(rng, req)
        else:
            req.method = rng.choice([req.method.lower(), "PUT", "GET", "HEAD", "PATCH", "OPTIONS"])
    if rng.random() < 0.15 and req.body is not None:
        req.chunks = [rng.randrange(1, 64) for _ in range(rng.randrange(1, 5))]
    if rng.random() < 0.04:
        req.length_delta = rng.choice([-3, -1, 1, 7])
    if rng.random() < 0.03:
        req.version = rng.choice(["HTTP/1.0", "HTTP/1.2", "HTTP/2.0"])


def byte_mutate(rng: random.Random, data: bytes) -> bytes:
    pos = rng.randrange(len(data) + 1)
    op = rng.randrange(4)
    junk = rng.choice([b"\n", b"\r", b" ", b"\x00", b"\t", b"\r\n", b":", b"\r\n\r\n", b"\xc5\xbf"])
    if op == 0:
        return data[:pos] + junk + data[pos:]
    if op == 1:
        return data[:pos] + data[pos + 1 :]
    if op == 2 and pos < len(data):
        return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
    line_end = data.find(b"\r\n", pos)
    return (
        data[: line_end + 2]
        + data[data.rfind(b"\r\n", 0, pos) + 2 : line_end + 2]
        + data[line_end + 2 :]
        if line_end > 0
        else data
    )


# -- cases --------------------------------------------------------------------------------------


@dataclass
class Case:
    """Bytes per connection, sent in the fragments listed (interleaved across connections)."""

    number: int
    streams: list[bytes]
    fragments: list[tuple[int, int]]  # (connection index, byte count) in send order

    def reproducer(self) -> str:
        lines = [f"# case {self.number}: {len(self.streams)} connection(s)"]
        for i, s in enumerate(self.streams):
            lines.append(f"conn[{i}] = {s!r}")
        return "\n".join(lines)


def _fragments(rng: random.Random, streams: list[bytes]) -> list[tuple[int, int]]:
    left = [len(s) for s in streams]
    out: list[tuple[int, int]] = []
    while any(left):
        i = rng.choice([k for k, n in enumerate(left) if n])
        n = left[i] if rng.random() < 0.5 else rng.randint(1, left[i])
        out.append((i, n))
        left[i] -= n
    return out


def make_case(rng: random.Random, number: int, engine: Engine) -> Case:
    conns = 1 if rng.random() < 0.8 else rng.randint(2, 3)
    streams: list[bytes] = []
    for _ in range(conns):
        data = b""
        for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
            req = seed_request(rng, engine)
            mutate(rng, req)
            raw = req.render(number)
            if rng.random() < 0.05:
                raw = byte_mutate(rng, raw)
            data += raw
        if rng.random() < 0.08:
            data = data[: rng.randrange(1, len(data) + 1)]  # cut short: a partial send
        streams.append(data)
    fragments = [(i, len(s)) for i, s in enumerate(streams)]
    if conns > 1 or rng.random() < 0.2:
        fragments = _fragments(rng, streams)
    return Case(number, streams, fragments)
