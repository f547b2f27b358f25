"""What each engine accepts in the create-body fields with host power, as allowlists.

Podman's compat API decodes a Docker create body into its own CLI flags, so the same JSON means
different things on each engine: a bind source starting with '.' is a host path to Podman,
`Config.Volumes` keys become `-v` flags (`src:dst` is a bind), namespace modes take `ns:<path>`,
`pasta:<opts>`, `pod`, and `HostConfig.Mounts` entries are joined into one `--mount` string (a ','
inside a source adds fields). The checks therefore accept per field only the values known safe on
the engine in front; anything else is refused. An engine the proxy could not identify gets the
intersection (UNKNOWN), never the union.

Sources (read for facts): moby api/types/container/hostconfig*.go (Valid() per mode) and
daemon/oci_linux.go; Podman pkg/api/handlers/compat/containers_create.go, pkg/specgen/namespaces.go
(ParseNamespace, ParseIPCNamespace, ParseUserNamespace, ParseNetworkFlag), pkg/specgen/volumes.go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.policy.types import Engine

ENGINES: tuple[Engine, ...] = ("docker", "podman", "unknown")


@dataclass(frozen=True, slots=True)
class Dialect:
    """The plain (private, host-powerless) values one engine accepts per field."""

    engine: Engine
    label: str
    # folded HostConfig key -> values that give a private namespace on this engine
    namespace_modes: Mapping[str, frozenset[str]]
    mount_types: frozenset[str]
    bind_options: frozenset[str]
    log_drivers: frozenset[str]
    # Podman joins Mounts fields into "type=..,source=..,target=..": a ',' adds a field.
    mount_commas: bool
    # dockerd ignores ContainerIDFile (the CLI writes it); Podman writes that host file.
    container_id_file: bool


_DOCKER_BIND_OPTIONS = frozenset(
    {"ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "slave", "rslave",
     "consistent", "cached", "delegated"}
)  # fmt: skip
_LOG_DRIVERS = frozenset({"", "json-file", "journald", "none"})

DOCKER = Dialect(
    engine="docker",
    label="Docker Engine",
    namespace_modes={
        "networkmode": frozenset({"", "default", "bridge", "none"}),
        "pidmode": frozenset({""}),
        "ipcmode": frozenset({"", "none", "private", "shareable"}),
        "utsmode": frozenset({""}),
        "usernsmode": frozenset({""}),
        "cgroupnsmode": frozenset({"", "private"}),
        "cgroup": frozenset({""}),
    },
    mount_types=frozenset({"bind", "volume", "tmpfs", "image"}),
    bind_options=_DOCKER_BIND_OPTIONS,
    log_drivers=_LOG_DRIVERS | {"local"},
    mount_commas=True,
    container_id_file=True,
)

PODMAN = Dialect(
    engine="podman",
    label="Podman",
    namespace_modes={
        "networkmode": frozenset({"", "default", "bridge", "none", "private"}),
        "pidmode": frozenset({"", "private"}),
        "ipcmode": frozenset({"", "none", "private", "shareable"}),
        "utsmode": frozenset({"", "private"}),
        "usernsmode": frozenset({"", "private", "auto", "keep-id", "nomap"}),
        "cgroupnsmode": frozenset({"", "private"}),
        "cgroup": frozenset({""}),
    },
    mount_types=frozenset({"bind", "volume", "tmpfs", "image"}),
    # Podman's -v also takes O (overlay, with host upperdir/workdir), U (chown the host source),
    # idmap, dev, suid, exec, copy: none of them pass.
    bind_options=_DOCKER_BIND_OPTIONS | {"rbind", "bind", "noexec", "nosuid", "nodev"},
    log_drivers=_LOG_DRIVERS | {"k8s-file"},
    mount_commas=False,
    container_id_file=False,
)


def _intersection(a: Dialect, b: Dialect) -> Dialect:
    return Dialect(
        engine="unknown",
        label="an unidentified engine (strictest common values)",
        namespace_modes={k: v & b.namespace_modes[k] for k, v in a.namespace_modes.items()},
        mount_types=a.mount_types & b.mount_types,
        bind_options=a.bind_options & b.bind_options,
        log_drivers=a.log_drivers & b.log_drivers,
        mount_commas=a.mount_commas and b.mount_commas,
        container_id_file=a.container_id_file and b.container_id_file,
    )


UNKNOWN = _intersection(DOCKER, PODMAN)
DIALECTS: Mapping[str, Dialect] = {"docker": DOCKER, "podman": PODMAN, "unknown": UNKNOWN}


def dialect_for(engine: str) -> Dialect:
    return DIALECTS.get(engine, UNKNOWN)


def classify_engine(ping_headers: Mapping[str, str], version: Any) -> Engine:
    """Which engine answered: `ping_headers` are the /_ping response headers (lower-case names),
    `version` the decoded /version body. Podman marks its answers with Libpod-* headers and names
    its component "Podman Engine"; dockerd says `Server: Docker/...` and names a component
    "Engine". Anything else, or mixed signs, is "unknown" (the strictest dialect)."""
    names: list[str] = []
    platform = ""
    if isinstance(version, dict):
        comps = version.get("Components")
        if isinstance(comps, list):
            names = [str(c.get("Name", "")) for c in comps if isinstance(c, dict)]
        plat = version.get("Platform")
        if isinstance(plat, dict):
            platform = str(plat.get("Name", ""))
    podman = any(h.startswith("libpod-") for h in ping_headers) or any(
        "podman" in n.lower() for n in [*names, platform]
    )
    docker = ping_headers.get("server", "").startswith("Docker/") and "Engine" in names
    if podman and not docker:
        return "podman"
    if docker and not podman:
        return "docker"
    return "unknown"
