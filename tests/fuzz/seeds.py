"""Requests as real clients send them (pure: a seeded RNG in, a Request out).

The docker CLI's and docker-py's create bodies (binds, mounts, privileged, namespaces, labels),
exec create and start, rename, lists with filters, attach and exec start with the tcp upgrade,
old-API start bodies, volume create with driver options, `top` with `ps_args`, libpod routes, and
bodies that carry a second request. Bodies are pair lists, so mutations can repeat and respell
keys; a Request renders to the exact bytes sent.
"""

from __future__ import annotations

import json
import random
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
