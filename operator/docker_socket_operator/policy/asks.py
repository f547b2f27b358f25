"""What a request asked for, as facts for the audit log: the container it reached (name, labels)
and what a create or exec body asked for, in the terms of a policy's create/exec constraints.
`docker-socket-operator suggest` (policy/suggest.py) writes a policy from these facts."""

from __future__ import annotations

from typing import Any

from docker_socket_operator.policy.body import DockerObject, as_labels
from docker_socket_operator.policy.constraints import (
    DEFAULT_CAPABILITIES,
    normalise_capability,
    normalise_security_opt,
)
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts

_NAMESPACE_MODES = ("networkmode", "pidmode", "ipcmode", "utsmode", "usernsmode", "cgroupnsmode")
_NO_NEW_PRIVILEGES = frozenset({"no-new-privileges", "no-new-privileges=true"})


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _bind_sources(hc: DockerObject) -> list[str]:
    sources = [b.split(":", 1)[0] for b in _strings(hc.get("binds"))]
    mounts = hc.get("mounts")
    for mount in mounts if isinstance(mounts, list) else []:
        if isinstance(mount, DockerObject) and str(mount.get("type", "")).lower() == "bind":
            source = mount.get("source")
            if isinstance(source, str):
                sources.append(source)
    return [s for s in sources if s.startswith("/")]


def _host_config_asks(hc: DockerObject, asks: dict[str, Any]) -> None:
    if hc.get("privileged") is True:
        asks["privileged"] = True
    binds = _bind_sources(hc)
    if binds:
        asks["binds"] = sorted({*asks.get("binds", []), *binds})
    caps = {normalise_capability(c) for c in _strings(hc.get("capadd"))} - DEFAULT_CAPABILITIES
    if caps:
        asks["capabilities"] = sorted({*asks.get("capabilities", []), *caps})
    for key in _NAMESPACE_MODES:
        mode = hc.get(key)
        if isinstance(mode, str) and (mode == "host" or mode.startswith("container:")):
            asks["hostNamespaces"] = True
    if any(hc.get(k) for k in ("devices", "devicerequests", "devicecgrouprules")):
        asks["devices"] = True
    if hc.get("volumesfrom"):
        asks["volumesFrom"] = True
    if hc.get("sysctls"):
        asks["sysctls"] = True
    opts = {normalise_security_opt(o) for o in _strings(hc.get("securityopt"))}
    opts -= _NO_NEW_PRIVILEGES
    if opts:
        asks["securityOpt"] = sorted({*asks.get("securityOpt", []), *opts})
    runtime = hc.get("runtime")
    if isinstance(runtime, str) and runtime not in ("", "runc"):
        asks["runtimes"] = [runtime]
    if hc.get("cgroupparent"):
        asks["cgroupParent"] = True


def create_asks(body: Any, name: str) -> dict[str, Any]:
    """A container create: the new container's name, image and labels, and its host asks."""
    body = body if isinstance(body, DockerObject) else DockerObject()
    image = body.get("image")
    asks: dict[str, Any] = {
        "name": name.lstrip("/"),
        "image": image if isinstance(image, str) else "",
    }
    labels = as_labels(body.get("labels"))
    if labels:
        asks["labels"] = labels
    _host_config_asks(body, asks)  # dockerd before 1.25 read HostConfig at the top level too
    inner = body.get("hostconfig")
    if isinstance(inner, DockerObject):
        _host_config_asks(inner, asks)
    return asks


def exec_asks(body: Any) -> dict[str, Any]:
    body = body if isinstance(body, DockerObject) else DockerObject()
    asks: dict[str, Any] = {}
    user = body.get("user")
    if isinstance(user, str) and user:
        asks["user"] = user
    if body.get("privileged") is True:
        asks["privileged"] = True
    return asks


def container_record(c: ContainerFacts) -> dict[str, Any]:
    return {"name": c.name, "labels": dict(c.labels)}


def audit_facts(req: RequestFacts) -> dict[str, Any]:
    """The fields a request adds to its audit line (none for most)."""
    facts: dict[str, Any] = {}
    if req.container is not None:
        facts["container"] = container_record(req.container)
    name = req.op.name if req.op is not None else ""
    if name == "containers.create":
        facts["create"] = create_asks(req.body, req.query.get("name", ""))
    elif name == "exec.create":
        facts["exec"] = exec_asks(req.body)
    return facts
