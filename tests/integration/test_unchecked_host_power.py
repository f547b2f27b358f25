"""`allow: ["*"]` beside the default create constraints, against a real dockerd and Podman.

The create checks refuse a privileged container or a bind of `/`; a plugin, a swarm service or
a swarm the node joins asks for the same in a place they never look (a plugin's manifest
mounts `/` and runs as root once enabled). A glob does not allow those operations: only their
own name does. The request is made for real (a plugin tar built here) and the daemon is asked
afterwards whether anything changed."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import assert_blocked, call

pytestmark = [pytest.mark.docker, pytest.mark.podman]

PLUGIN = "dso-unchecked-plugin:1"
EVERYTHING: list[dict[str, Any]] = [{"allow": ["*"]}]
NAMED: list[dict[str, Any]] = [{"allow": ["*", "plugins.create"]}]


def plugin_tar() -> bytes:
    """A plugin whose manifest bind-mounts the host's `/` and asks for CAP_SYS_ADMIN."""
    config = {
        "Description": "root on the node",
        "Documentation": "https://example.invalid",
        "Entrypoint": ["/bin/sh"],
        "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "p.sock"},
        "Network": {"Type": "host"},
        "Mounts": [
            {"Source": "/", "Destination": "/host", "Type": "bind", "Options": ["rbind", "rw"]}
        ],
        "Linux": {"Capabilities": ["CAP_SYS_ADMIN"], "AllowAllDevices": True},
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = json.dumps(config).encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        rootfs = tarfile.TarInfo("rootfs")
        rootfs.type = tarfile.DIRTYPE
        rootfs.mode = 0o755
        tar.addfile(rootfs)
    return out.getvalue()


def plugin_names(daemon: Daemon) -> set[str]:
    r = daemon.api("GET", "/plugins")
    if r.status != 200:  # Podman has no plugins
        return set()
    return {str(p.get("Name")) for p in r.json()}


def remove_plugin(daemon: Daemon) -> None:
    daemon.api("DELETE", f"/plugins/{PLUGIN}", query={"force": "1"})


def test_star_does_not_create_a_plugin(daemon: Daemon, proxies: ProxyPool) -> None:
    remove_plugin(daemon)
    proxy = proxies.get(daemon.socket_path, EVERYTHING)
    tar = {"Content-Type": "application/x-tar"}
    try:
        r = call(
            proxy.addr, "POST", f"/plugins/create?name={PLUGIN}", raw=plugin_tar(), headers=tar
        )
        assert_blocked(r)
        assert PLUGIN not in plugin_names(daemon), f"plugin created on {daemon.kind}"
        for method, path in [
            ("POST", "/plugins/pull?remote=example.invalid/p:1"),
            ("POST", f"/plugins/{PLUGIN}/set"),
            ("POST", f"/plugins/{PLUGIN}/enable"),
        ]:
            assert_blocked(call(proxy.addr, method, path, []))
        # The same request, once the policy names the operation, is a working plugin create:
        # the refusal above is the policy's, not a malformed request's.
        if daemon.kind == "docker":
            named = proxies.get(daemon.socket_path, NAMED)
            r = call(
                named.addr, "POST", f"/plugins/create?name={PLUGIN}", raw=plugin_tar(), headers=tar
            )
            assert r.status == 204, r.body[:300]
            assert PLUGIN in plugin_names(daemon)
    finally:
        remove_plugin(daemon)


def test_star_does_not_put_the_node_in_a_swarm(daemon: Daemon, proxies: ProxyPool) -> None:
    proxy = proxies.get(daemon.socket_path, EVERYTHING)
    before = daemon.api("GET", "/swarm").status
    for path, body in [
        ("/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1:2377"}),
        ("/swarm/join", {"RemoteAddrs": ["127.0.0.1:2377"], "JoinToken": "SWMTKN-1-x"}),
    ]:
        assert_blocked(call(proxy.addr, "POST", path, body))
    assert daemon.api("GET", "/swarm").status == before, f"swarm state changed on {daemon.kind}"
    service = {
        "Name": "dso-unchecked",
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": daemon.image,
                "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}],
            }
        },
    }
    assert_blocked(call(proxy.addr, "POST", "/services/create", service))
    # What `*` still allows here is ordinary: a read of the swarm is the daemon's answer.
    assert call(proxy.addr, "GET", "/swarm").status == before
