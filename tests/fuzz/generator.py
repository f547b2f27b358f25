"""Fuzz cases from a seeded RNG (pure: the same seed gives the same bytes).

Seeds are the shapes real clients send (docker CLI and docker-py create bodies, exec, rename,
lists with filters, attach and exec start with the tcp upgrade, chunked bodies); each is mutated
structurally (path, query, headers, framing, JSON keys and values) and sometimes at the byte
level, then several requests are pipelined on one connection, spread over interleaved
connections, or cut short.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fuzz.goreading import Engine
from tests.fuzz.world import BIND_PREFIX, CONTAINERS, EXECS


class Pairs(list[tuple[str, Any]]):
    """A JSON object as a list of pairs, so keys can repeat and be spelt any way."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None  # Pairs, raw bytes, or None
    chunks: list[int] | None = None  # chunk sizes: send the body chunked
    length_delta: int = 0  # Content-Length off by this much
    version: str = "HTTP/1.1"
    escape_keys: bool = False
    raw_framing: bool = False  # the headers and body already frame the message as sent

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return render_json(self.body, self.escape_keys).encode()

    def render(self, case: int) -> bytes:
        body = self.body_bytes()
        head = [f"{self.method} {self.target} {self.version}", f"X-Fuzz-Case: {case}"]
        head += [f"{k}: {v}" for k, v in self.headers]
        names = {k.strip().lower() for k, _ in self.headers}
        if "host" not in names:
            head.insert(1, "Host: docker")
        if self.chunks is not None:
            if "transfer-encoding" not in names:
                head.append("Transfer-Encoding: chunked")
            out = b""
            pos = 0
            for size in [*self.chunks, len(body)]:
                piece = body[pos : pos + size]
                pos += len(piece)
                if piece:
                    out += b"%x\r\n%s\r\n" % (len(piece), piece)
            payload = out + b"0\r\n\r\n"
        else:
            if (
                (body or self.method in ("POST", "PUT"))
                and "content-length" not in names
                and not self.raw_framing
            ):
                head.append(f"Content-Length: {max(0, len(body) + self.length_delta)}")
            payload = body
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + payload


def _escape(key: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if c.isalpha() else c for c in key)


def render_json(value: Any, escape_keys: bool = False) -> str:
    if isinstance(value, Pairs):
        items = []
        for k, v in value:
            key = f'"{_escape(k)}"' if escape_keys else json.dumps(k, ensure_ascii=False)
            items.append(f"{key}:{render_json(v, escape_keys)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render_json(v, escape_keys) for v in value) + "]"
    if isinstance(value, dict):
        return render_json(pairs(value), escape_keys)
    return json.dumps(value, ensure_ascii=False)


def pairs(doc: dict[str, Any]) -> Pairs:
    return Pairs((k, pairs(v) if isinstance(v, dict) else v) for k, v in doc.items())


# -- seeds --------------------------------------------------------------------------------------

VERSIONS = ["", "/v1.41", "/v1.47", "/v1.24", "/v1.44", "/v1"]


def _refs() -> list[str]:
    out: list[str] = []
    for c in CONTAINERS:
        out += [c.name, "/" + c.name, c.id, c.id[:12], c.id[:4]]
    return [*out, "a", "WEB", "nope", "web-x"]


REFS = _refs()
EXEC_IDS = [*EXECS, "e1e1e1e1e1e1", "nope"]
NAMES = [
    "web-new",
    "web-2",
    "secret",
    "secret2",
    "db",
    "web/x",
    "x",
    "",
    "web-x",
    "/web-y",
    "webhook",
]

HOST_POWER: list[tuple[str, Any]] = [
    ("Privileged", True),
    ("Binds", ["/:/host"]),
    ("Binds", ["/etc:/x:ro"]),
    ("Binds", ["../../..:/host"]),
    ("Binds", ["./x:/y"]),
    ("Binds", [f"{BIND_PREFIX}/../../etc:/x"]),
    ("Binds", [f"{BIND_PREFIX}base:/x"]),
    ("Binds", [f"{BIND_PREFIX}/ok:/data:rshared"]),
    ("Mounts", [{"Type": "bind", "Source": "/", "Target": "/h"}]),
    ("Mounts", [{"Source": "/etc", "Target": "/h"}]),
    ("Mounts", [{"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {
        "DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]),
    ("PidMode", "host"),
    ("PidMode", "ns:/proc/1/ns/pid"),
    ("PidMode", "container:secret"),
    ("NetworkMode", "host"),
    ("NetworkMode", "HOST"),
    ("NetworkMode", "slirp4netns:allow_host_loopback=true"),
    ("NetworkMode", "pasta:--map-gw"),
    ("NetworkMode", "container:web"),
    ("NetworkMode", "ns:/proc/1/ns/net"),
    ("IpcMode", "host"),
    ("UTSMode", "host"),
    ("UsernsMode", "host"),
    ("CgroupnsMode", "host"),
    ("CapAdd", ["SYS_ADMIN"]),
    ("CapAdd", ["ALL"]),
    ("CapAdd", ["cap_sys_admin"]),
    ("Capabilities", ["CAP_SYS_ADMIN"]),
    ("Devices", [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]),
    ("DeviceCgroupRules", ["a *:* rwm"]),
    ("SecurityOpt", ["seccomp=unconfined"]),
    ("SecurityOpt", ["label:disable"]),
    ("MaskedPaths", []),
    ("ReadonlyPaths", []),
    ("Sysctls", {"kernel.core_pattern": "|/x"}),
    ("CgroupParent", "/"),
    ("Runtime", "kata"),
    ("VolumesFrom", ["secret"]),
    ("Links", ["secret:s"]),
]  # fmt: skip
SAFE_HOST: list[tuple[str, Any]] = [
    ("Binds", [f"{BIND_PREFIX}/ok:/data"]),
    ("Binds", ["named:/data"]),
    ("NetworkMode", "default"),
    ("NetworkMode", "bridge"),
    ("NetworkMode", "mynet"),
    ("CapAdd", ["CHOWN"]),
    ("SecurityOpt", ["no-new-privileges"]),
    ("Privileged", False),
    ("PidMode", ""),
]


def create_body(rng: random.Random, cli: bool) -> dict[str, Any]:
    """A create body as the docker CLI (every field, mostly zero) or docker-py (few fields)."""
    host: dict[str, Any] = dict([rng.choice(SAFE_HOST)])
    if cli:
        host.update({"NetworkMode": "default", "RestartPolicy": {"Name": "no"}, "AutoRemove": False,
                     "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
                     "CgroupnsMode": "", "Dns": [], "Privileged": False, "PublishAllPorts": False,
                     "ReadonlyRootfs": False, "Mounts": [], "LogConfig": {"Type": "", "Config": {}}})  # fmt: skip
    body: dict[str, Any] = {
        "Image": rng.choice(["alpine", "docker.io/library/busybox:1", "evil.example/x"]),
        "Cmd": ["sleep", "60"],
        "Labels": rng.choice([{"team": "a"}, {"team": "b"}, {}, {"team": "a", "app": "web"}]),
        "HostConfig": host,
    }
    if cli:
        body.update({"Hostname": "", "User": "", "AttachStdin": False, "Tty": False, "Env": [],
                     "Volumes": {}, "NetworkingConfig": {"EndpointsConfig": {"default": {}}}})  # fmt: skip
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        key, value = rng.choice(HOST_POWER)
        host[key] = value
    if rng.random() < 0.08:
        body["Volumes"] = {"/:/host": {}}
    if rng.random() < 0.08:
        key, value = rng.choice(HOST_POWER)
        body[key] = value  # the deprecated top-level HostConfig
    return body


def _json_headers(rng: random.Random) -> list[tuple[str, str]]:
    return [("Content-Type", rng.choice(["application/json", "application/json; charset=utf-8"]))]


def seed_request(rng: random.Random, engine: Engine) -> Request:
    v = rng.choice(VERSIONS + (["/v4.0.0"] if engine == "podman" else []))
    ref = rng.choice(REFS)
    kind = rng.randrange(17)
    if kind <= 3:
        name = rng.choice(NAMES)
        target = f"{v}/containers/create" + (f"?name={name}" if name else "")
        return Request(
            "POST", target, _json_headers(rng), pairs(create_body(rng, rng.random() < 0.5))
        )
    if kind == 15:
        user = rng.choice(["", "app", "root", "0", "1000", "APP", " app"])
        doc = {"AttachStdout": True, "AttachStderr": True, "Cmd": ["env"], "User": user,
               "Privileged": rng.random() < 0.2, "Tty": False}  # fmt: skip
        return Request("POST", f"{v}/containers/{ref}/exec", _json_headers(rng), pairs(doc))
    if kind == 4:
        upgrade = [("Connection", "Upgrade"), ("Upgrade", "tcp")] if rng.random() < 0.7 else []
        return Request("POST", f"{v}/exec/{rng.choice(EXEC_IDS)}/start",
                       _json_headers(rng) + upgrade, pairs({"Detach": False, "Tty": False}))  # fmt: skip
    if kind == 5:
        names = "&".join(f"name={rng.choice(NAMES)}" for _ in range(rng.choice([1, 1, 2])))
        return Request("POST", f"{v}/containers/{ref}/rename?{names}")
    if kind == 6:
        filters = quote(json.dumps({"label": [rng.choice(["team=a", "team=b"])]}))
        return Request("GET", f"{v}/containers/json?all=1&filters={filters}")
    if kind == 7:
        upgrade = [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        return Request("POST", f"{v}/containers/{ref}/attach?stream=1&stdin=1&stdout=1", upgrade)
    if kind == 8:
        op = rng.choice(["start", "stop", "restart", "kill", "pause", "wait", "resize?h=1&w=2"])
        body = (
            pairs({"HostConfig": {"Privileged": True}})
            if op == "start" and rng.random() < 0.3
            else None
        )
        return Request(
            "POST", f"{v}/containers/{ref}/{op}", _json_headers(rng) if body else [], body
        )
    if kind == 9:
        key = rng.choice(["ps_args", "PS_ARGS", "ps.args", "Ps_Args", "ps_args"])
        args = rng.choice(["eww", "aux", "-ef", "e", "auxe", "-o%20pid,args", "-A%20e", "ax"])
        tail = rng.choice(
            ["json", "logs?stdout=1", f"top?{key}={args}", "top", "changes", "archive?path=/"]
        )
        return Request("GET", f"{v}/containers/{ref}/{tail}")
    if kind == 10:
        return Request("DELETE", f"{v}/containers/{ref}?force=1")
    if kind == 11:
        opts = rng.choice([{"type": "none", "o": "bind", "device": "/etc"}, {"type": "tmpfs", "device": "tmpfs"},
                           {"type": "none", "o": "bind", "device": f"{BIND_PREFIX}/v"}])  # fmt: skip
        body = pairs({"Name": "v1", "Driver": "local", "DriverOpts": opts})
        return Request("POST", f"{v}/volumes/create", _json_headers(rng), body)
    if kind == 12:
        return Request(
            rng.choice(["GET", "HEAD"]),
            f"{v}/{rng.choice(['_ping', 'version', 'info', 'events?since=1'])}",
        )
    if kind == 16:
        return smuggle_request(rng, v)
    if kind == 13:
        body = pairs(
            {"Memory": 1 << 20, "DeviceCgroupRules": ["a *:* rwm"] if rng.random() < 0.5 else []}
        )
        return Request("POST", f"{v}/containers/{ref}/update", _json_headers(rng), body)
    base = "/v4.0.0/libpod" if engine == "podman" else "/v1.41/libpod"
    return Request("POST", f"{base}/containers/create", _json_headers(rng),
                   pairs({"image": "alpine", "privileged": True}))  # fmt: skip


def smuggle_request(rng: random.Random, v: str) -> Request:
    """A request whose body holds another request, framed so that a reader that disagrees on
    where the body ends would take the inner one as the next request."""
    victim = rng.choice(["db", "secret", CONTAINERS[3].id, "web"])
    inner = (
        f"POST {v}/containers/{victim}/{rng.choice(['kill', 'rename?name=web-z', 'restart'])} "
        "HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    outer = f"{v}/containers/{rng.choice(REFS)}/{rng.choice(['kill', 'start', 'resize?h=1&w=1'])}"
    style = rng.randrange(4)
    if style == 0:  # a chunked body that ends early
        return Request(
            "POST",
            outer,
            [("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n" + inner,
            raw_framing=True,
        )
    if style == 1:  # a chunk size that lies
        body = b"%x\r\n{}\r\n0\r\n\r\n" % rng.choice([1, 3, 0x40]) + inner
        return Request("POST", outer, [("Transfer-Encoding", "chunked")], body, raw_framing=True)
    if style == 2:  # a Content-Length shorter than what follows
        return Request("POST", outer, [("Content-Length", "2")], b"{}" + inner, raw_framing=True)
    # a chunk extension and trailer carrying the inner request's bytes
    body = b"2;x=" + inner.replace(b"\r\n", b" ") + b"\r\n{}\r\n0\r\nX-T: 1\r\n\r\n"
    return Request("POST", outer, [("Transfer-Encoding", "chunked")], body, raw_framing=True)


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
