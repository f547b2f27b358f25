"""The audit-mode floor: the denials that stay denials when a policy runs in `mode: audit`.

Audit mode forwards what enforce mode would deny, so that a client can be watched before its
policy is written. The floor keeps that from ever opening the node. It is an allowlist: a
would-be denial is forwarded only when its operation is in AUDIT_FORWARDABLE and none of the
checks below refuses it; everything else (unknown routes, libpod routes, swarm, plugins,
services, builds, network creation, prunes...) stays denied. docs/security.md lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docker_socket_operator.policy.constraints import (
    DEFAULT_CAPABILITIES,
    CreateLimits,
    ExecLimits,
    check_create_body,
    check_exec_body,
    check_start_body,
    check_update_body,
    check_volume_create_body,
    normalise_capability,
)
from docker_socket_operator.policy.queries import query_reason
from docker_socket_operator.policy.types import RequestFacts

# Operations that run code in, talk to, or copy files into or out of a container: through a
# container with host power they are host power, so audit mode needs the container to have none.
HOST_REACHING = frozenset(
    {
        "exec.create",
        "exec.start",
        "exec.resize",
        "containers.attach",
        "containers.attach-websocket",
        "containers.archive",
        "containers.archive-info",
        "containers.put-archive",
        "containers.export",
    }
)

# Operations audit mode may forward. Their host power, if any, is in a body checked below
# (create, update, start, exec, volume create) or in the container they reach (HOST_REACHING).
AUDIT_FORWARDABLE = HOST_REACHING | frozenset(
    {
        "system.ping",
        "system.version",
        "system.info",
        "system.events",
        "system.data-usage",
        "containers.list",
        "containers.create",
        "containers.inspect",
        "containers.logs",
        "containers.stats",
        "containers.top",
        "containers.changes",
        "containers.wait",
        "containers.resize",
        "containers.start",
        "containers.stop",
        "containers.restart",
        "containers.kill",
        "containers.pause",
        "containers.unpause",
        "containers.rename",
        "containers.update",
        "containers.delete",
        "exec.inspect",
        "images.list",
        "images.inspect",
        "images.history",
        "images.create",
        "images.tag",
        "images.delete",
        "images.search",
        "images.load",
        "networks.list",
        "networks.inspect",
        "networks.connect",
        "networks.disconnect",
        "networks.delete",
        "volumes.list",
        "volumes.inspect",
        "volumes.create",
        "volumes.delete",
        "services.list",
        "services.inspect",
        "services.logs",
        "tasks.list",
        "tasks.inspect",
        "tasks.logs",
        "nodes.list",
        "nodes.inspect",
    }
)


# What the floor lets a body ask for: nothing with host power; any image, any exec user (a user
# inside a container with no host power is not host power).
_FLOOR_CREATE = CreateLimits()
_FLOOR_EXEC = ExecLimits(privileged=False, users=frozenset({"*"}))


def _body_reason(req: RequestFacts) -> str | None:
    assert req.op is not None
    name = req.op.name
    bad = None
    if name == "containers.create":
        bad = check_create_body(req.body, _FLOOR_CREATE, req.engine, req.create_context)
    elif name == "containers.update":
        bad = check_update_body(req.body, _FLOOR_CREATE)
    elif name == "containers.start":
        bad = check_start_body(req.body)
    elif name == "exec.create":
        bad = check_exec_body(req.body, _FLOOR_EXEC)
    elif name == "volumes.create":
        bad = check_volume_create_body(req.body, _FLOOR_CREATE)
    return bad or query_reason(name, req.query, req.engine, req.params)


def floor_reason(req: RequestFacts) -> str | None:
    """Why a request enforce mode denies must stay denied in audit mode, or None to forward it.
    (Visibility and redactEnv denials are floors in themselves: decide.py keeps them.)"""
    op = req.op
    if req.libpod:
        return "libpod routes are not forwarded in audit mode"
    if op is None:
        return "unknown API routes are not forwarded in audit mode"
    if op.name not in AUDIT_FORWARDABLE:
        return f"{op.name} is not forwarded in audit mode"
    if op.target in ("container", "exec") and req.container is None:
        return "the target container is not known"
    reason = _body_reason(req)
    if reason is not None:
        return reason
    if op.name in HOST_REACHING and req.container is not None and req.container.host_power:
        return f"the container has host power ({req.container.host_power})"
    return None


# Not cgroupnsmode: "host" is dockerd's default on cgroup v1 hosts, and gives a container with
# no other power a view of cgroup paths, not control of them.
_NAMESPACE_MODES = ("networkmode", "pidmode", "ipcmode", "utsmode", "usernsmode")


def inspect_host_power(doc: Mapping[str, Any]) -> str:
    """Why a container (a container inspect answer) holds host power, or "". Strict: anything
    unusual counts, since the answer only decides what audit mode forwards."""
    hc = doc.get("HostConfig")
    if not isinstance(hc, dict):
        return "no HostConfig in its inspect answer"
    hc = {k.lower(): v for k, v in hc.items()}
    if hc.get("privileged"):
        return "privileged"
    for key in _NAMESPACE_MODES:
        mode = hc.get(key)
        if isinstance(mode, str) and (mode == "host" or mode.startswith(("container:", "ns:"))):
            return f"{key} {mode}"
    caps = hc.get("capadd") or []
    extra = [c for c in caps if normalise_capability(str(c)) not in DEFAULT_CAPABILITIES]
    if extra:
        return "capabilities " + ", ".join(map(str, extra))
    for key in ("devices", "devicerequests", "devicecgrouprules", "volumesfrom"):
        if hc.get(key):
            return key
    if hc.get("binds"):
        return "host binds"
    for mount in doc.get("Mounts") or []:
        if isinstance(mount, dict) and mount.get("Type") not in ("volume", "tmpfs"):
            return f"{mount.get('Type')} mount {mount.get('Source')}"
    for key in ("maskedpaths", "readonlypaths"):
        # dockerd lists the paths it masks; an empty list is `systempaths=unconfined`
        if isinstance(hc.get(key), list) and not hc[key]:
            return f"{key} empty (system paths unmasked)"
    for opt in hc.get("securityopt") or []:
        # anything but no-new-privileges: a custom seccomp profile, apparmor, labels, ...
        if str(opt).replace("=", ":") not in ("no-new-privileges", "no-new-privileges:true"):
            return f"security option {opt}"
    for key in ("cgroupparent", "sysctls"):
        if hc.get(key):
            return key
    return ""
