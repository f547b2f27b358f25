"""The fake daemon's fixed state (containers, execs) and the policies the fuzzer runs against.

State never changes during a run (a create answers 201 but adds nothing), so a case replays to
the same outcome: its bytes alone are its reproducer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docker_socket_operator.policy.types import ContainerFacts


@dataclass(frozen=True)
class FakeContainer:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    image: str = "docker.io/library/alpine:latest"

    @property
    def facts(self) -> ContainerFacts:
        return ContainerFacts(id=self.id, name=self.name, labels=self.labels, image=self.image)


def _id(prefix: str) -> str:
    return (prefix * 64)[:64]


SECRET = "hunter2-s3cr3t"
CONTAINERS = (
    FakeContainer(_id("a1"), "web", {"team": "a", "app": "web"}, ("WEB_TOKEN=" + SECRET,)),
    FakeContainer(_id("a2"), "web-2", {"team": "a", "app": "web"}),
    FakeContainer(_id("b3"), "db", {"team": "a", "protected": "true"}),
    FakeContainer(_id("c4"), "secret", {"team": "b"}, ("DB_PASSWORD=" + SECRET,)),
    # an ID prefix shared with "web": "a" alone is ambiguous, "a1" is not
    FakeContainer(_id("a9"), "webhook", {"team": "b"}),
)
EXECS = {
    _id("e1"): CONTAINERS[0].id,
    _id("e2"): CONTAINERS[2].id,
    _id("e3"): CONTAINERS[3].id,
}


def resolve(ref: str) -> FakeContainer | None:
    """dockerd's lookup: full ID, then name (with or without '/'), then a unique ID prefix."""
    for c in CONTAINERS:
        if c.id == ref:
            return c
    name = ref[1:] if ref.startswith("/") else ref
    for c in CONTAINERS:
        if c.name == name:
            return c
    if not ref:
        return None
    found = [c for c in CONTAINERS if c.id.startswith(ref)]
    return found[0] if len(found) == 1 else None


def exec_container(exec_id: str) -> FakeContainer | None:
    cid = EXECS.get(exec_id)
    return resolve(cid) if cid else None


BIND_PREFIX = "/srv/data"

_READS = ["system.ping", "system.version", "system.info", "system.events", "containers.list"]
_PER_CONTAINER = [
    "containers.inspect",
    "containers.start",
    "containers.stop",
    "containers.restart",
    "containers.kill",
    "containers.rename",
    "containers.attach",
    "containers.logs",
    "containers.wait",
    "containers.top",
    "containers.resize",
    "containers.update",
    "containers.delete",
    "exec.create",
    "exec.start",
    "exec.inspect",
    "exec.resize",
]
_CREATE = {"bindPrefixes": [BIND_PREFIX], "images": ["docker.io/library/*"]}

# name -> policy spec. "scoped": per-container rules, visibility and redaction; "broad": every
# container operation with body constraints only, and a scoped deny.
POLICIES: dict[str, dict[str, Any]] = {
    "scoped": {
        "rules": [
            {"allow": _READS},
            {
                "allow": ["containers.create", *_PER_CONTAINER],
                "containers": {"names": ["web*"]},
                "create": _CREATE,
                "exec": {"users": ["app"]},
            },
            {"allow": ["volumes.create"], "create": _CREATE},
        ],
        "visibility": {"containers": {"labels": {"team": "a"}}, "redactEnv": True},
    },
    "broad": {
        "rules": [
            {
                "deny": ["containers.delete", "containers.rename"],
                "containers": {"labels": {"protected": "true"}},
            },
            {
                "allow": [*_READS, "containers.create", "volumes.create", *_PER_CONTAINER],
                "create": _CREATE,
                "exec": {"users": ["app", "1000"]},
            },
        ],
    },
}

# The drop-in mode: no policy file, Tecnativa's variables (Env redacted by default).
TECNATIVA_ENV = {
    "CONTAINERS": "1",
    "EXEC": "1",
    "POST": "1",
    "VOLUMES": "1",
    "ALLOW_START": "1",
    "ALLOW_RESTARTS": "1",
    "ALLOW_BIND_PREFIXES": BIND_PREFIX,
}
