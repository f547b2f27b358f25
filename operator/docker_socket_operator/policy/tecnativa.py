"""Tecnativa/docker-socket-proxy's environment variables as a policy (docs/tecnativa.md).

Same variables and defaults (EVENTS, PING, VERSION on; everything else off; POST gates writes), so
a compose file swaps the image and keeps its environment. Where Tecnativa's path-prefix rules are
a hole, this is stricter and says so in the docs: exec needs EXEC (not CONTAINERS), file-reading
"reads" need their own ALLOW_* opt-in, and container create bodies are checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError

from docker_socket_operator.api.models import (
    CreateConstraints,
    DockerSocketPolicySpec,
    ExecConstraints,
    Rule,
    Visibility,
)
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS
from docker_socket_operator.policy.types import PolicyError

SECTIONS = (
    "AUTH", "BUILD", "COMMIT", "CONFIGS", "CONTAINERS", "DISTRIBUTION", "EVENTS", "EXEC", "GRPC",
    "IMAGES", "INFO", "NETWORKS", "NODES", "PING", "PLUGINS", "SECRETS", "SERVICES", "SESSION",
    "SWARM", "SYSTEM", "TASKS", "VERSION", "VOLUMES",
)  # fmt: skip
DEFAULT_ON = frozenset({"EVENTS", "PING", "VERSION"})

# Reads that hand out files: allowed only with their own opt-in (and their section, and POST for
# the PUT). Tecnativa allows them with the section alone.
FILE_READ_GATES = {
    "containers.archive": "ALLOW_ARCHIVE",
    "containers.archive-info": "ALLOW_ARCHIVE",
    "containers.put-archive": "ALLOW_ARCHIVE",
    "containers.export": "ALLOW_EXPORT",
    "images.get": "ALLOW_EXPORT",
    "images.get-all": "ALLOW_EXPORT",
    "containers.attach-websocket": "ALLOW_ATTACH_WS",
}

# Container lifecycle calls granted on their own, even with POST=0 (as Tecnativa's ALLOW_START,
# ALLOW_STOP and ALLOW_RESTARTS; ALLOW_PAUSE is ours).
LIFECYCLE_GATES = {
    "ALLOW_START": ("containers.start",),
    "ALLOW_STOP": ("containers.stop",),
    "ALLOW_RESTARTS": ("containers.restart", "containers.stop", "containers.kill"),
    "ALLOW_PAUSE": ("containers.pause", "containers.unpause"),
}

_INTEGER = re.compile(r"[+-]?[0-9]+")


def env_flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """HAProxy's `-m bool` on an env var: a non-zero integer is true. We also take true/yes/on
    (which HAProxy reads as false) because that is what the person who wrote them meant."""
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if _INTEGER.fullmatch(value):
        return int(value) != 0
    return value.lower() in ("true", "yes", "on")


def _env_list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def allowed_operations(env: Mapping[str, str]) -> list[str]:
    """Operation names the environment opens, in catalogue order."""
    sections = {s for s in SECTIONS if env_flag(env, s, s in DEFAULT_ON)}
    post = env_flag(env, "POST")
    delete = env_flag(env, "DELETE") if "DELETE" in env else post
    granted = {
        name for var, names in LIFECYCLE_GATES.items() if env_flag(env, var) for name in names
    }
    names: list[str] = []
    for op in ALL_OPERATIONS:
        if op.name in names:
            continue
        reads = op.method in ("GET", "HEAD")
        write_ok = delete if op.method == "DELETE" else post
        allowed = op.section in sections and (reads or write_ok)
        gate = FILE_READ_GATES.get(op.name)
        if gate is not None:
            allowed = allowed and env_flag(env, gate)
        elif op.reads_files:
            allowed = False  # a file-reading route without an opt-in variable: never
        if allowed or op.name in granted:
            names.append(op.name)
    return names


def spec_from_tecnativa_env(env: Mapping[str, str]) -> DockerSocketPolicySpec:
    """The policy a Tecnativa-style environment describes. Raises PolicyError on bad values."""
    privileged = env_flag(env, "ALLOW_PRIVILEGED")
    try:
        create = CreateConstraints(
            privileged=privileged,
            bindPrefixes=_env_list(env, "ALLOW_BIND_PREFIXES"),
            hostNamespaces=env_flag(env, "ALLOW_HOST_NAMESPACES"),
            capabilities=_env_list(env, "ALLOW_CAPABILITIES"),
            devices=env_flag(env, "ALLOW_DEVICES"),
        )
    except ValidationError as exc:
        raise PolicyError(f"ALLOW_BIND_PREFIXES entries must be absolute paths: {exc}") from None
    names = allowed_operations(env)
    rules = []
    if names:
        rules.append(
            Rule(
                allow=names,
                create=create,
                exec=ExecConstraints(privileged=privileged),
                description="Tecnativa docker-socket-proxy environment",
            )
        )
    return DockerSocketPolicySpec(
        rules=rules, visibility=Visibility(redactEnv=env_flag(env, "REDACT_ENV", True))
    )
