"""The oracle: every request the fake daemon received, re-decided as the daemon read it.

Rules (each broken rule is a Violation):
- "denied-reached": the project's own policy core (parse_target, match_operation, decide) refuses
  the request when fed the daemon's reading of it (its path, its choice among repeated query
  values, its JSON key folding and duplicate handling, the container it resolves).
- "host-power": a create/update/volume body that grants host power on the engine behind the
  proxy, checked here with an allowlist of our own (a second opinion on constraints.py that knows
  Podman's readings: relative bind sources, `src:dst` volume keys, `ns:`/`slirp4netns:` modes).
- "two-readings": the target is not what the proxy would have decided on (non-canonical path),
  or a query parameter or a header the daemon reads arrives more than once with different values.
- "framing": the daemon saw something a Go server reads ambiguously (bare LF, CL with TE, ...).
The proxy's own reads (bare GETs of inspects, lists, `/_ping` and `/version` without the
fuzzer's X-Fuzz-Case marker) are not client requests and are skipped; what they return reaches a
client only through the proxy's filters, which the runner's leak checks cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.catalogue.operations import match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.catalogue.types import BadTarget
from docker_socket_operator.policy.body import DockerObject
from docker_socket_operator.policy.compile import CompiledPolicy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts
from tests.fuzz.fakedaemon import Recorded
from tests.fuzz.goreading import (
    Engine,
    Unreadable,
    api_path,
    decoded_path,
    go_json,
    query_params,
    query_reading,
    query_values,
    split_target,
)
from tests.fuzz.world import BIND_PREFIX, exec_container, resolve


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str
    case: int | None = None

    def __str__(self) -> str:
        return f"[{self.kind}] case {self.case}: {self.detail}"


_LOOKUPS = frozenset({"system.ping", "system.version", "containers.inspect", "exec.inspect",
                      "containers.list", "volumes.inspect", "networks.inspect",
                      "images.inspect"})  # fmt: skip
_BODY_OPS = frozenset({"containers.create", "containers.update", "volumes.create", "exec.create",
                       "containers.start"})  # fmt: skip
# Headers whose value the daemon acts on: a second copy is a second reading.
_READ_HEADERS = ("content-type", "host", "content-length", "transfer-encoding", "upgrade",
                 "connection", "x-registry-auth", "expect")  # fmt: skip


def is_proxy_lookup(rec: Recorded, engine: Engine) -> bool:
    """The proxy's own reads: engine detection, the inspects that resolve a target (for a
    container inspect, the request's own path, whose answer is relayed only if allowed), lists
    and volume/network inspects for visibility, the image inspect a create reads on Podman
    (its Config decides the systemd mode). Bare GETs without the fuzzer's marker."""
    if rec.case is not None or rec.method != "GET" or rec.body:
        return False
    if any(k not in ("host", "user-agent", "accept") for k, _ in rec.headers):
        return False
    try:
        path = api_path(decoded_path(split_target(rec.target)[0]), engine)
    except Unreadable:
        return False
    matched = match_operation("GET", path)
    return matched is not None and matched.op.name in _LOOKUPS


def check_record(policy: CompiledPolicy, rec: Recorded, engine: Engine) -> list[Violation]:
    found = [
        Violation("framing", f"{a}: {rec.describe()[:300]!r}", rec.case) for a in rec.anomalies
    ]
    if is_proxy_lookup(rec, engine) or not rec.method:
        return found

    def bad(kind: str, detail: str) -> None:
        found.append(
            Violation(kind, f"{detail}\n    daemon read: {rec.describe()[:600]!r}", rec.case)
        )

    raw_path, raw_query = split_target(rec.target)
    try:
        path = decoded_path(raw_path)
    except Unreadable:
        return found  # Go refuses the URL: nothing happens
    api = api_path(path, engine)
    try:
        mine = parse_target(rec.target)
    except BadTarget as e:
        bad("two-readings", f"target the proxy itself refuses ({e})")
        return found
    if mine.api_path != api:
        bad("two-readings", f"daemon routes {api!r}, the proxy decided on {mine.api_path!r}")
    values = query_values(raw_query)
    ctype = (rec.header("content-type") or "").split(";")[0].strip().lower()
    if engine == "docker" and ctype == "application/x-www-form-urlencoded" and rec.method != "GET":
        # dockerd's ParseForm puts a form body's values ahead of the query's
        form = query_values(rec.body.decode("latin-1"))
        values = form + values
        if form:
            bad("two-readings", "a form-encoded body reached dockerd")
    for key, vals in query_params(values, engine).items():
        if len(set(vals)) > 1:
            bad("two-readings", f"query parameter {key!r} repeated with values {vals}")
    for name in _READ_HEADERS:
        if len(set(rec.values(name))) > 1:
            bad("two-readings", f"header {name} repeated: {rec.values(name)}")
    query = query_reading(values, engine)

    libpod = api == "/libpod" or api.startswith("/libpod/")
    matched = None if libpod else match_operation(rec.method, api)
    op = matched.op if matched is not None else None
    container: ContainerFacts | None = None
    if op is not None and op.target in ("container", "exec"):
        ref = matched.params.get("id", "") if matched is not None else ""
        target = resolve(ref) if op.target == "container" else exec_container(ref)
        if target is None:
            return found  # the daemon answers 404 and does nothing
        container = target.facts
    body: Any = None
    if op is not None and op.name in _BODY_OPS and rec.body.strip():
        if not rec.complete:
            return found  # a cut body fails to decode: the daemon answers 400
        try:
            body = go_json(rec.body)
        except Unreadable:
            return found
    facts = RequestFacts(
        method=rec.method,
        api_path=api,
        op=op,
        params=matched.params if matched is not None else {},
        query=query,
        body=body,
        container=container,
        libpod=libpod,
        engine=engine,
    )
    decision = decide(policy, facts)
    if not decision.allow:
        bad("denied-reached", f"policy says {decision.rule}: {decision.reason}")
    if op is not None and op.name in ("containers.create", "containers.update", "volumes.create"):
        for reason in host_power(body, engine, op.name):
            bad("host-power", reason)
    return found


# -- the second opinion on host power -----------------------------------------------------------

_PLAIN_MODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_NAMESPACES = (
    "networkmode",
    "pidmode",
    "ipcmode",
    "utsmode",
    "usernsmode",
    "cgroupnsmode",
    "cgroup",
)
_DEFAULT_CAPS = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})  # fmt: skip
_RESOURCES = ("devices", "devicerequests", "devicecgrouprules", "cgroupparent")
_MUST_BE_EMPTY = ("devices", "devicerequests", "devicecgrouprules", "sysctls", "cgroupparent",
                  "volumesfrom", "links")  # fmt: skip


def _under_prefix(path: str) -> bool:
    parts = path.split("/")
    if not path.startswith("/") or ".." in parts or "." in parts or "" in parts[1:]:
        return False
    return path == BIND_PREFIX or path.startswith(BIND_PREFIX + "/")


def _is_host_source(source: str, engine: Engine) -> bool:
    if engine == "podman":
        return source.startswith(("/", ".")) or "/" in source
    return source.startswith("/")


def _set(value: Any) -> bool:
    return value not in (None, False, "", 0, [], {}) and not (isinstance(value, dict) and not value)


def _host_config(hc: DockerObject, engine: Engine, where: str) -> list[str]:
    out: list[str] = []
    if _set(hc.get("privileged")):
        out.append(f"{where}Privileged={hc.get('privileged')!r}")
    for entry in hc.get("binds") or [] if isinstance(hc.get("binds"), list) else []:
        parts = str(entry).split(":")
        if len(parts) >= 2 and _is_host_source(parts[0], engine) and not _under_prefix(parts[0]):
            out.append(f"{where}Binds host source {parts[0]!r}")
        if len(parts) >= 3 and {"shared", "rshared"} & set(parts[2].split(",")):
            out.append(f"{where}Binds shared propagation {entry!r}")
    for mount in hc.get("mounts") or [] if isinstance(hc.get("mounts"), list) else []:
        if isinstance(mount, DockerObject) and str(mount.get("type") or "").lower() not in (
            "volume", "tmpfs",
        ):  # fmt: skip
            source = mount.get("source")
            if not isinstance(source, str) or not _under_prefix(source):
                out.append(f"{where}Mounts source {source!r}")
    for key in _NAMESPACES:
        mode = hc.get(key)
        if mode in (None, ""):
            continue
        if (
            not isinstance(mode, str)
            or _PLAIN_MODE.fullmatch(mode) is None
            or mode.lower() == "host"
        ):
            out.append(f"{where}{key}={mode!r}")
    for key in ("capadd", "capabilities"):
        caps = hc.get(key)
        for cap in caps if isinstance(caps, list) else []:
            name = str(cap).upper().removeprefix("CAP_")
            if name not in _DEFAULT_CAPS:
                out.append(f"{where}{key} {cap!r}")
    for key in _MUST_BE_EMPTY:
        if _set(hc.get(key)):
            out.append(f"{where}{key}={hc.get(key)!r}")
    for opt in hc.get("securityopt") or [] if isinstance(hc.get("securityopt"), list) else []:
        if opt not in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
            out.append(f"{where}SecurityOpt {opt!r}")
    for key in ("maskedpaths", "readonlypaths"):
        if hc.get(key) is not None:
            out.append(f"{where}{key} set")
    if hc.get("runtime") not in (None, "", "runc"):
        out.append(f"{where}Runtime {hc.get('runtime')!r}")
    return out


def host_power(body: Any, engine: Engine, op: str) -> list[str]:
    """What in this body gives the container host power (empty: nothing)."""
    if not isinstance(body, DockerObject):
        return []
    if op == "volumes.create":
        opts, driver = body.get("driveropts"), body.get("driver")
        if driver not in (None, "") and str(driver).lower() != "local":
            return []  # a plugin's options mean what the plugin (installed by the admin) says
        if isinstance(opts, DockerObject) and str(opts.get("type") or "") != "tmpfs" and opts:
            device = opts.get("device")
            if not isinstance(device, str) or not _under_prefix(device):
                return [f"volume DriverOpts {opts.as_map()!r}"]
        return []
    if op == "containers.update":  # container.UpdateConfig: Resources and RestartPolicy only
        return [f"update {k}={body.get(k)!r}" for k in _RESOURCES if _set(body.get(k))]
    out = _host_config(body, engine, "")
    inner = body.get("hostconfig")
    if op == "containers.create" and isinstance(inner, DockerObject):
        out += _host_config(inner, engine, "HostConfig.")
    volumes = body.get("volumes")
    if engine == "podman" and isinstance(volumes, DockerObject):
        out += [f"Config.Volumes key {k!r}" for k in volumes.as_map() if ":" in k]
    return out
