"""Types shared by the policy core and the proxy shell (interface contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from docker_socket_operator.catalogue.types import Operation, RequestTarget

# The daemon behind the proxy: each decodes a create body its own way (see policy/engines.py).
Engine = Literal["docker", "podman", "unknown"]


class Keep:
    """The default of RequestFacts.but's fields: keep this field as it is."""


KEEP = Keep()

# The classes a request makes have their own __init__ (init=False): compiled, it costs a tenth of
# the one dataclasses generates at import, which stays interpreted. object.__setattr__ because
# they are frozen (mypyc turns it into a plain store).


@dataclass(frozen=True, slots=True, init=False)
class ContainerFacts:
    """What the proxy learned about a container by inspecting it upstream."""

    id: str  # full 64-hex ID
    name: str  # without the leading '/'
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    # Why the container holds host power (privileged, host namespaces, host binds...), or "":
    # audit mode never forwards an exec, attach or file copy into such a container.
    host_power: str = ""

    def __init__(
        self,
        id: str,
        name: str,
        labels: Mapping[str, str] | None = None,
        image: str = "",
        host_power: str = "",
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "labels", {} if labels is None else labels)
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "host_power", host_power)


@dataclass(frozen=True, slots=True)
class CreateContext:
    """What a container create takes from the daemon as it is, looked up by the proxy before
    deciding: an existing named volume is mounted with the options it was created with (the
    body's own volume options are ignored then), and Podman picks systemd mode from the image's
    command when the body names none."""

    # name -> the daemon's volume inspect ({"Driver": ..., "Options": {...}}), for each named
    # volume the body mounts that exists
    volumes: Mapping[str, Any] = field(default_factory=dict)
    # the image's Config (Entrypoint, Cmd), or None: not looked up (the body decides alone)
    image_config: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, init=False)
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
    # containers.create: the existing objects it would use (None: not looked up)
    create_context: CreateContext | None = None

    def __init__(
        self,
        method: str,
        api_path: str,
        op: Operation | None,
        params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        container: ContainerFacts | None = None,
        libpod: bool = False,
        engine: Engine = "unknown",
        target: RequestTarget | None = None,
        object_labels: Mapping[str, str] | None = None,
        create_context: CreateContext | None = None,
    ) -> None:
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "api_path", api_path)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "params", {} if params is None else params)
        object.__setattr__(self, "query", {} if query is None else query)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "container", container)
        object.__setattr__(self, "libpod", libpod)
        object.__setattr__(self, "engine", engine)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "object_labels", object_labels)
        object.__setattr__(self, "create_context", create_context)

    def but(
        self,
        *,
        method: str | Keep = KEEP,
        api_path: str | Keep = KEEP,
        op: Operation | Keep | None = KEEP,
        params: Mapping[str, str] | Keep = KEEP,
        query: Mapping[str, str] | Keep = KEEP,
        body: Any = KEEP,
        container: ContainerFacts | Keep | None = KEEP,
        libpod: bool | Keep = KEEP,
        engine: Engine | Keep = KEEP,
        target: RequestTarget | Keep | None = KEEP,
        object_labels: Mapping[str, str] | Keep | None = KEEP,
        create_context: CreateContext | Keep | None = KEEP,
    ) -> RequestFacts:
        """The same facts with the fields given changed (dataclasses.replace, without its
        generic cost: the proxy derives facts a few times per request)."""
        return RequestFacts(
            self.method if isinstance(method, Keep) else method,
            self.api_path if isinstance(api_path, Keep) else api_path,
            self.op if isinstance(op, Keep) else op,
            self.params if isinstance(params, Keep) else params,
            self.query if isinstance(query, Keep) else query,
            self.body if isinstance(body, Keep) else body,
            self.container if isinstance(container, Keep) else container,
            self.libpod if isinstance(libpod, Keep) else libpod,
            self.engine if isinstance(engine, Keep) else engine,
            self.target if isinstance(target, Keep) else target,
            self.object_labels if isinstance(object_labels, Keep) else object_labels,
            self.create_context if isinstance(create_context, Keep) else create_context,
        )


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self, allow: bool, rule: str, reason: str, would_deny: bool = False, owned: bool = False
    ) -> None:
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "would_deny", would_deny)
        object.__setattr__(self, "owned", owned)


class PolicyError(ValueError):
    """A policy that cannot be compiled (unknown operation, bad glob...): never half-applied."""


class BadBody(ValueError):
    """A body that cannot be decoded the way dockerd would: the proxy answers 400."""
