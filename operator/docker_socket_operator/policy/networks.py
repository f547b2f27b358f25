"""The check on network create bodies: a private bridge, and nothing that reaches the host's.

Both engines build what the body says: a `macvlan`/`ipvlan` network puts containers on the
host's physical segment (`parent` = a host interface), `com.docker.network.bridge.name` reuses
an existing host bridge (docker0, cni0, a VM's bridge), and an explicit IPAM subnet or gateway
adds a host route that wins over the node's own (a /32 on 169.254.169.254 sends the host's
metadata traffic into the client's containers). `ConfigFrom` copies the options of a config-only
network someone else made. So the body is an allowlist: its fields, the `bridge` driver with
the default IPAM, and the options that tune the bridge (ICC, MTU) only. Keys are folded as
body.decode_docker_json folds them; Options keys are a Go map's, compared exactly.
"""

from __future__ import annotations

from typing import Any

from docker_socket_operator.policy.body import DockerObject

_FIELDS = frozenset(
    {"name", "checkduplicate", "driver", "scope", "internal", "attachable", "enableipv4",
     "enableipv6", "ipam", "options", "labels", "ingress", "configonly", "configfrom"}
)  # fmt: skip
_DRIVERS = frozenset({"", "bridge"})
_OPTIONS = frozenset(
    {"com.docker.network.bridge.enable_icc", "com.docker.network.driver.mtu", "mtu"}
)
_SCOPES = frozenset({"", "local"})
_IPAM_FIELDS = frozenset({"driver", "config", "options"})


def _ipam_reason(ipam: Any) -> str | None:
    if ipam is None:
        return None
    if not isinstance(ipam, DockerObject):
        return "IPAM must be an object"
    for key in ipam:
        if key not in _IPAM_FIELDS:
            return f"IPAM field {ipam.exact[key]!r} is not allowed"
    if ipam.get("driver") not in (None, "", "default"):
        return f"IPAM driver {ipam.get('driver')!r} is not allowed (only the default)"
    if ipam.get("options"):
        return "IPAM options are not allowed"
    if ipam.get("config"):
        return (
            "IPAM Config (subnets, ranges, gateways) is not allowed: an explicit subnet adds a "
            "host route that can take over the node's own traffic; let the daemon pick one"
        )
    return None


def check_network_create_body(body: Any) -> str | None:
    """POST /networks/create: why the body could reach the host's network, or None."""
    if body is None:
        return None
    if not isinstance(body, DockerObject):
        return "network config must be a JSON object"
    for key in body:
        if key not in _FIELDS:
            return f"network field {body.exact[key]!r} is not allowed"
    driver = body.get("driver")
    if driver is not None and driver not in _DRIVERS:
        return f"network driver {driver!r} is not allowed (only 'bridge')"
    scope = body.get("scope")
    if scope is not None and scope not in _SCOPES:
        return f"network scope {scope!r} is not allowed"
    for key, name in (("ingress", "Ingress"), ("configonly", "ConfigOnly")):
        if body.get(key) not in (None, False):
            return f"network {name} is not allowed"
    config_from = body.get("configfrom")
    if config_from is not None and (
        not isinstance(config_from, DockerObject) or config_from.get("network")
    ):
        return "network ConfigFrom is not allowed (it takes another network's options)"
    options = body.get("options")
    if options is not None:
        if not isinstance(options, DockerObject):
            return "network Options must be an object"
        for key in options.as_map():
            if key not in _OPTIONS:
                return f"network option {key!r} is not allowed"
    return _ipam_reason(body.get("ipam"))
