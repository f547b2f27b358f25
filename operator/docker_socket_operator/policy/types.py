"""Types shared by the policy core and the proxy shell (interface contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from docker_socket_operator.catalogue.types import Operation, RequestTarget

# The daemon behind the proxy: each decodes a create body its own way (see policy/engines.py).
Engine = Literal["docker", "podman", "unknown"]


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What the proxy learned about a container by inspecting it upstream."""

    id: str  # full 64-hex ID
    name: str  # without the leading '/'
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    # Why the container holds host power (privileged, host namespaces, host binds...), or "":
    # audit mode never forwards an exec, attach or file copy into such a container.
    host_power: str = ""


@dataclass(frozen=True, slots=True)
class RequestFacts:
    method: str
    api_path: str  # canonical, no version prefix
    op: Operation | None  # None: unknown route
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)  # first value wins, as in Go
    body: Any = None  # decoded JSON with casefolded keys (see policy.body), or None
    container: ContainerFacts | None = None  # resolved target container, when needed
    libpod: bool = False
    engine: Engine = "unknown"  # unknown: the checks apply the strictest common dialect
    # The request-target as parsed (version prefix, raw query): what the proxy forwards.
    target: RequestTarget | None = None
    # The labels of the network or volume the path names, when an owned rule needs them.
    object_labels: Mapping[str, str] | None = None

    def but(self, **changes: Any) -> RequestFacts:
        """The same facts with `changes` (dataclasses.replace, without its generic cost: the
        proxy derives facts a few times per request)."""
        fields = {
            "method": self.method,
            "api_path": self.api_path,
            "op": self.op,
            "params": self.params,
            "query": self.query,
            "body": self.body,
            "container": self.container,
            "libpod": self.libpod,
            "engine": self.engine,
            "target": self.target,
            "object_labels": self.object_labels,
        }
        fields.update(changes)
        return RequestFacts(**fields)


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    rule: str  # "rules[2] allow containers.restart" | "default deny" | ...
    reason: str  # human words for the 403 message and the audit log
    # Audit mode: enforce mode would deny (rule and reason say why) but the request is forwarded.
    # allow is then True, so every path after the decision treats it as an allowed request.
    would_deny: bool = False
    # Allowed by an owned rule (or under visibility.owned): lists and prunes go out narrowed to
    # the policy's own objects (policy/ownership.py).
    owned: bool = False


class PolicyError(ValueError):
    """A policy that cannot be compiled (unknown operation, bad glob...): never half-applied."""


class BadBody(ValueError):
    """A body that cannot be decoded the way dockerd would: the proxy answers 400."""
