"""Named bundles of operations for the clients people put in front of a Docker socket.

Each preset lists exactly what its clients call (docs/presets.md has the calls per client).
"Read" presets leave out the reads that hand out files or secrets: archive and export (a copy of
any file in a container), attach over websocket, image export, `GET /swarm` (join tokens),
`GET /swarm/unlockkey` and config contents. A preset rule takes `containers`, `create` and `exec`
like any allow rule; its create/exec checks default to refusing everything with host power.
"""

from __future__ import annotations

from typing import Final

_PING_VERSION = ["system.ping", "system.version"]

# Portainer (read-only users), Homepage, dashboards: see everything, change nothing, read no files.
READ_ONLY: Final = [
    *_PING_VERSION,
    "system.info",
    "system.events",
    "system.data-usage",
    "containers.list",
    "containers.inspect",
    "containers.logs",
    "containers.stats",
    "containers.top",
    "containers.changes",
    "images.list",
    "images.inspect",
    "images.history",
    "networks.list",
    "networks.inspect",
    "volumes.list",
    "volumes.inspect",
    "services.list",
    "services.inspect",
    "tasks.list",
    "tasks.inspect",
    "nodes.list",
    "nodes.inspect",
]

# Traefik, Caddy docker-proxy, Homepage's discovery: find containers (and swarm services) by labels.
DISCOVERY: Final = [
    *_PING_VERSION,
    "system.info",
    "system.events",
    "containers.list",
    "containers.inspect",
    "networks.list",
    "networks.inspect",
    "services.list",
    "services.inspect",
    "tasks.list",
]

# Dozzle: discovery plus log and stats streams.
LOGS: Final = [*DISCOVERY, "containers.logs", "containers.stats"]

# Autoheal, Watchtower in monitor-only mode, restart buttons: act on existing containers only.
RESTART_ONLY: Final = [
    *_PING_VERSION,
    "containers.list",
    "containers.inspect",
    "containers.start",
    "containers.stop",
    "containers.restart",
]

# docker compose up/down/ps/logs/exec/cp/pull. No prune (other projects' objects), no export or
# checkpoints, no build (BuildKit sessions are their own policy decision).
COMPOSE_ADMIN: Final = [
    *_PING_VERSION,
    "system.info",
    "system.events",
    "containers.list",
    "containers.create",
    "containers.inspect",
    "containers.logs",
    "containers.start",
    "containers.stop",
    "containers.restart",
    "containers.kill",
    "containers.attach",
    "containers.wait",
    "containers.delete",
    "containers.update",
    "containers.top",
    "containers.stats",
    "containers.changes",
    "containers.resize",
    "containers.rename",
    "containers.pause",
    "containers.unpause",
    "containers.archive",
    "containers.archive-info",
    "containers.put-archive",
    "exec.create",
    "exec.start",
    "exec.resize",
    "exec.inspect",
    "networks.list",
    "networks.inspect",
    "networks.create",
    "networks.delete",
    "networks.connect",
    "networks.disconnect",
    "volumes.list",
    "volumes.inspect",
    "volumes.create",
    "volumes.delete",
    "images.list",
    "images.inspect",
    "images.create",
    "images.tag",
    "images.delete",
]

# GitLab Runner's docker executor, Jenkins docker agents, Woodpecker/Drone-style runners.
CI_RUNNER: Final = [
    *_PING_VERSION,
    "system.info",
    "system.events",
    "containers.list",
    "containers.create",
    "containers.inspect",
    "containers.start",
    "containers.stop",
    "containers.kill",
    "containers.wait",
    "containers.logs",
    "containers.attach",
    "containers.resize",
    "containers.delete",
    "exec.create",
    "exec.start",
    "exec.resize",
    "exec.inspect",
    "images.list",
    "images.inspect",
    "images.create",
    "images.tag",
    "images.delete",
    "images.load",
    "volumes.create",
    "volumes.inspect",
    "volumes.delete",
    "networks.create",
    "networks.inspect",
    "networks.delete",
    "networks.connect",
    "networks.disconnect",
]

PRESETS: Final[dict[str, list[str]]] = {
    "read-only": READ_ONLY,
    "discovery": DISCOVERY,
    "logs": LOGS,
    "restart-only": RESTART_ONLY,
    "compose-admin": COMPOSE_ADMIN,
    "ci-runner": CI_RUNNER,
}

PRESET_CLIENTS: Final[dict[str, str]] = {
    "read-only": "Portainer (read-only users), Homepage, Glances-style dashboards",
    "discovery": "Traefik, Caddy docker-proxy, Homepage service discovery",
    "logs": "Dozzle",
    "restart-only": "Autoheal, restart buttons, deunhealth",
    "compose-admin": "docker compose (up, down, ps, logs, exec, cp, pull)",
    "ci-runner": "GitLab Runner docker executor, Jenkins docker agents, Woodpecker",
}
