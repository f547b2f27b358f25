"""Tecnativa/docker-socket-proxy's environment variables as a policy (docs/tecnativa.md).

Same variables and defaults (EVENTS, PING, VERSION on; everything else off; POST gates writes), so
a compose file swaps the image and keeps its environment. Where Tecnativa's path-prefix rules are
a hole, this is stricter and says so in the docs: exec needs EXEC (not CONTAINERS), file-reading
"reads" need their own ALLOW_* opt-in, and container create bodies are checked.
"""

from __future__ import annotations

import difflib
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
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS, UNCHECKED_HOST_POWER
from docker_socket_operator.catalogue.types import Operation
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

# HAProxy's `-m bool` casts the string to an integer the way its read_int64() does: an optional
# sign, then the leading digits; whatever follows is ignored ("1 # traefik" is 1, "1.0" is 1).
_INTEGER = re.compile(r"[+-]?[0-9]+")
_WORDS_ON = ("true", "yes", "on")

# Variables that are not flags (lists, paths, HAProxy's log level).
VALUE_VARS = frozenset({"ALLOW_BIND_PREFIXES", "ALLOW_CAPABILITIES", "SOCKET_PATH", "LOG_LEVEL"})
# Every variable read here (docs/tecnativa.md). DISABLE_IPV6 is read by the proxy command (cli.py).
KNOWN_VARS = frozenset(
    {*SECTIONS, "POST", "DELETE", *LIFECYCLE_GATES, *FILE_READ_GATES.values(), "ALLOW_PRIVILEGED",
     "ALLOW_HOST_NAMESPACES", "ALLOW_DEVICES", "REDACT_ENV", "DISABLE_IPV6", *VALUE_VARS}
)  # fmt: skip
# Variables of Tecnativa's forks (or of Tecnativa's own later drafts) that this proxy does not
# read, and what to use instead.
FOREIGN_VARS = {
    "PUT": "POST=1 opens PUT",
    "PATCH": "the Engine API has no PATCH route",
    "ALLOW_EXEC": "EXEC=1 (with POST=1) opens exec",
    "ALLOW_KILL": "ALLOW_RESTARTS=1 opens kill",
    "ALLOW_UNPAUSE": "ALLOW_PAUSE=1 opens pause and unpause",
    "ALLOW_LOGS": "CONTAINERS=1 opens logs; there is no separate switch",
    "ALLOW_ATTACH": "CONTAINERS=1 opens attach; ALLOW_ATTACH_WS opens its websocket",
    "ALLOW_POWER": "use ALLOW_START, ALLOW_STOP, ALLOW_RESTARTS",
}


def _haproxy_bool(raw: str) -> bool:
    """What Tecnativa's `env(NAME) -m bool` makes of the value: a leading non-zero integer."""
    m = _INTEGER.match(raw)
    return m is not None and int(m.group()) != 0


def env_flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """HAProxy's `-m bool` on an env var: a value starting with a non-zero integer is true
    ("1", "2", "1 # note"). We also take true/yes/on (which HAProxy reads as false) because that
    is what the person who wrote them meant, and ignore surrounding blanks (HAProxy reads " 1"
    as 0). env_warnings() reports every value read differently from Tecnativa."""
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip()
    m = _INTEGER.match(value)
    if m is not None:
        return int(m.group()) != 0
    return value.lower() in _WORDS_ON


def _said(on: bool) -> str:
    return "on" if on else "off"


def _value_warning(name: str, raw: str, default: bool) -> str | None:
    ours = env_flag({name: raw}, name, default)
    # DISABLE_IPV6 is read by Tecnativa's entrypoint, a shell `case` on 1|true|yes.
    ipv6 = name == "DISABLE_IPV6"
    theirs = raw.lower() in ("1", "true", "yes") if ipv6 else _haproxy_bool(raw)
    if ours != theirs:
        return (
            f"{name}={raw!r} is read as {_said(ours)} (Tecnativa read it as "
            f"{_said(theirs)}); write {name}={int(ours)}"
        )
    if not _INTEGER.fullmatch(raw) and raw.strip().lower() not in ("false", "no", "off", ""):
        return f"{name}={raw!r} is read as {_said(ours)}; write {name}=0 or {name}=1"
    return None


def _name_warning(name: str) -> str | None:
    upper = name.upper()
    if upper in KNOWN_VARS:
        return f"{name} is ignored: variable names are upper case ({upper})"
    if name in FOREIGN_VARS:
        return f"{name} is not a variable of this proxy and is ignored: {FOREIGN_VARS[name]}"
    if name != upper:
        return None
    close = difflib.get_close_matches(name, sorted(KNOWN_VARS), n=1, cutoff=0.85)
    if close:
        return f"{name} is not a variable of this proxy and is ignored; did you mean {close[0]}?"
    if name.startswith("ALLOW_"):
        return f"{name} is not a variable of this proxy and is ignored (docs/tecnativa.md)"
    return None


def env_warnings(env: Mapping[str, str]) -> list[str]:
    """What a person switching from Tecnativa should hear about at start: a flag whose value is
    not a plain integer (and how it was read, and how Tecnativa read it), and a variable that is
    not read although it looks like one (misspelt, lower case, or from a fork)."""
    warnings: list[str] = []
    for name in sorted(env):
        if name in KNOWN_VARS:
            if name not in VALUE_VARS:
                found = _value_warning(name, env[name], name in DEFAULT_ON or name == "REDACT_ENV")
                if found:
                    warnings.append(found)
        else:
            found = _name_warning(name)
            if found:
                warnings.append(found)
    return warnings


def flags_on(env: Mapping[str, str]) -> list[str]:
    """The flag variables read as on (defaults included), for the startup log."""
    defaults = {*DEFAULT_ON, "REDACT_ENV"}
    return sorted(
        n
        for n in KNOWN_VARS - VALUE_VARS
        if n != "DISABLE_IPV6" and env_flag(env, n, n in defaults)
    )


def _env_list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def _variables_needed(op: Operation, env: Mapping[str, str]) -> list[str] | None:
    """The variables that, all on, open `op` (None: no variable does). DELETE stands in for
    POST on a DELETE route only once it is set, as in Tecnativa."""
    gate = FILE_READ_GATES.get(op.name)
    if op.section not in SECTIONS or (op.reads_files and gate is None):
        return None  # e.g. a file-reading route without an opt-in variable: never
    needed = [op.section]
    if op.method not in ("GET", "HEAD"):
        needed.append("DELETE" if op.method == "DELETE" and "DELETE" in env else "POST")
    if gate is not None:
        needed.append(gate)
    if op.name in UNCHECKED_HOST_POWER:
        # Plugins, services and swarms can ask for what ALLOW_PRIVILEGED opens.
        needed.append("ALLOW_PRIVILEGED")
    return needed


def _first_of_each_name() -> list[Operation]:
    seen: dict[str, Operation] = {}
    for op in ALL_OPERATIONS:
        seen.setdefault(op.name, op)
    return list(seen.values())


def allowed_operations(env: Mapping[str, str]) -> list[str]:
    """Operation names the environment opens, in catalogue order."""
    granted = {
        name for var, names in LIFECYCLE_GATES.items() if env_flag(env, var) for name in names
    }
    names: list[str] = []
    for op in _first_of_each_name():
        needed = _variables_needed(op, env)
        opened = needed is not None and all(env_flag(env, v, v in DEFAULT_ON) for v in needed)
        if opened or op.name in granted:
            names.append(op.name)
    return names


def unallowed_hints(env: Mapping[str, str]) -> dict[str, str]:
    """For each operation the environment leaves closed, the variables that would open it, as
    a refusal says them ("env mode: set EXEC=1 POST=1"): a newcomer reads the fix in the 403."""
    allowed = set(allowed_operations(env))
    hints: dict[str, str] = {}
    for op in _first_of_each_name():
        if op.name in allowed:
            continue
        needed = _variables_needed(op, env)
        if needed is None:
            hints[op.name] = "env mode: no variable allows it, use a policy file"
            continue
        gates = [var for var, names in LIFECYCLE_GATES.items() if op.name in names]
        hint = "env mode: set " + " ".join(f"{var}=1" for var in needed)
        hints[op.name] = hint + "".join(f", or {var}=1" for var in gates)
    return hints


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
