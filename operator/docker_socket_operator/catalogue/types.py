"""Shared types of the operation catalogue and of request targets (interface contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Which kind of object the route's path parameter names (decides what the proxy resolves).
TargetKind = Literal["container", "exec", "image", "volume", "network", "plugin", "other", "none"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str  # "containers.restart"; several (method, template) pairs may share one name
    method: str  # "GET" | "HEAD" | "POST" | "PUT" | "DELETE"
    template: str  # "/containers/{id}/restart", without version prefix
    target: TargetKind = "none"
    hijack: bool = False  # attach / exec start: may switch to a raw bidirectional stream
    writes: bool = False  # changes daemon state (Tecnativa's POST gate)
    reads_files: bool = False  # archive/export/attach-ws/image export: "read-only" that is not
    section: str = ""  # Tecnativa section variable that governs it, e.g. "CONTAINERS"
    # The path parameter that may contain '/' (dockerd routes it as `{name:.*}`), or "".
    slash_param: str = ""


@dataclass(frozen=True, slots=True)
class MatchedOperation:
    op: Operation
    params: dict[str, str] = field(default_factory=dict)  # {"id": "web"} from the route template


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """A request-target split and canonicalised. api_path is percent-decoded, clean and without
    the version prefix; for Podman's libpod API it starts with '/libpod/'."""

    version: str  # "/v1.41", "/v4.0.0" or "" as sent
    api_path: str
    query: str  # raw query string without '?', forwarded as sent
    libpod: bool = False


class BadTarget(ValueError):
    """The request-target is malformed or not canonical: the proxy answers 400."""
