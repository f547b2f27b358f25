"""Red-team findings on operations other than container create, on both engines.

Podman's compat handlers read query parameters the Docker API does not define on the same
routes, and some of them act on containers or host paths the request does not name:
`POST /containers/{own}/restart?all=1` restarted every container on the daemon,
`DELETE /networks/{net}?force=1` removed every container attached to the network (the default
`podman` network holds them all), `DELETE /images/{img}?force=1` removed every container made
from the image, and `POST /images/{name}/push?destination=docker-archive:/path` wrote a tarball
at any host path as root. A rename could move another container into the reach of a rule
scoped by name. Each is refused now; the ordinary calls still work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool, ProxyProcess
from tests.support.rawhttp import assert_blocked, call

pytestmark = [pytest.mark.docker, pytest.mark.podman]

MINE = "more-ops-mine"
OTHER = "more-ops-other"
# Not "web": the session's shared containers keep that name.
SCOPED = "more-ops-scoped"
NET = "dso-more-ops-net"
IMG = "localhost/dso-more-ops:1"
PUSHED = Path("/tmp/dso-more-ops-pushed.tar")
RULES: list[dict[str, Any]] = [
    {
        "allow": ["containers.restart", "containers.stop", "containers.rename", "exec.create"],
        "containers": {"names": [MINE]},
    },
    {
        "allow": [
            "system.ping",
            "system.version",
            "networks.delete",
            "images.delete",
            "images.push",
            "images.tag",
        ]
    },
]
# An unscoped rename next to a rule scoped by name.
RENAME_RULES: list[dict[str, Any]] = [
    {"allow": ["exec.create"], "containers": {"names": [SCOPED]}},
    {"allow": ["containers.rename", "system.ping", "system.version"]},
]


def started_at(daemon: Daemon, ref: str) -> str:
    doc = daemon.inspect(ref)
    assert doc is not None, f"{ref} is gone on {daemon.kind}"
    return str(doc["State"]["StartedAt"])


@pytest.fixture
def proxy(daemon: Daemon, proxies: ProxyPool) -> Iterator[ProxyProcess]:
    for name in (MINE, OTHER):
        daemon.remove(name)
    yield proxies.get(daemon.socket_path, RULES)
    for name in (MINE, OTHER):
        daemon.remove(name)
    daemon.api("DELETE", f"/networks/{NET}")
    daemon.api("DELETE", f"/images/{IMG}", query={"force": "1"})
    PUSHED.unlink(missing_ok=True)


def test_restart_all_does_not_reach_other_containers(daemon: Daemon, proxy: ProxyProcess) -> None:
    daemon.create(MINE)
    daemon.create(OTHER)
    before = started_at(daemon, OTHER)
    r = call(proxy.addr, "POST", f"/containers/{MINE}/restart?all=1&t=0", timeout=60)
    assert started_at(daemon, OTHER) == before, f"{OTHER} restarted on {daemon.kind}"
    if daemon.kind == "podman":
        assert_blocked(r)
    else:
        assert r.status == 204, r.body[:300]  # dockerd does not read `all`
    # The ordinary restart of the allowed container works.
    r = call(proxy.addr, "POST", f"/containers/{MINE}/restart?t=0", timeout=60)
    assert r.status == 204, r.body[:300]


def test_network_delete_with_force_does_not_remove_containers(
    daemon: Daemon, proxy: ProxyProcess
) -> None:
    made = daemon.api("POST", "/networks/create", {"Name": NET})
    assert made.status == 201, made.body[:300]
    body = {"Image": daemon.image, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": NET}}
    made = daemon.api("POST", "/containers/create", body, query={"name": OTHER})
    assert made.status == 201, made.body[:300]
    assert daemon.api("POST", f"/containers/{OTHER}/start").status == 204
    r = call(proxy.addr, "DELETE", f"/networks/{NET}?force=1", timeout=60)
    assert daemon.inspect(OTHER) is not None, f"{OTHER} removed on {daemon.kind}"
    if daemon.kind == "podman":
        assert_blocked(r)
    # Without `force` the daemon refuses a network in use, as usual.
    r = call(proxy.addr, "DELETE", f"/networks/{NET}", timeout=60)
    assert r.status >= 400, r.body[:300]
    assert daemon.inspect(OTHER) is not None


def test_image_delete_with_force_does_not_remove_containers(
    daemon: Daemon, proxy: ProxyProcess
) -> None:
    daemon.create(MINE)
    query = {"container": MINE, "repo": IMG.split(":")[0], "tag": "1"}
    made = daemon.api("POST", "/commit", {}, query=query)
    assert made.status == 201, made.body[:300]
    body = {"Image": IMG, "Cmd": ["sleep", "3600"]}
    made = daemon.api("POST", "/containers/create", body, query={"name": OTHER})
    assert made.status == 201, made.body[:300]
    assert daemon.api("POST", f"/containers/{OTHER}/start").status == 204
    r = call(proxy.addr, "DELETE", f"/images/{IMG}?force=1", timeout=60)
    assert daemon.inspect(OTHER) is not None, f"{OTHER} removed on {daemon.kind}"
    if daemon.kind == "docker":
        assert r.status in (200, 409), r.body[:300]  # dockerd untags; its containers stay
        return
    assert_blocked(r)
    # force=0 is a plain delete: refused by the daemon while a container uses the image.
    r = call(proxy.addr, "DELETE", f"/images/{IMG}?force=0", timeout=60)
    assert r.status == 409, r.body[:300]
    assert daemon.inspect(OTHER) is not None


def test_push_destination_does_not_write_host_files(daemon: Daemon, proxy: ProxyProcess) -> None:
    if daemon.kind == "docker":
        pytest.skip("dockerd reads no destination: a push goes to the image's registry")
    PUSHED.unlink(missing_ok=True)
    target = f"/images/{daemon.image}/push?destination=docker-archive:{PUSHED}"
    r = call(proxy.addr, "POST", target, timeout=60)
    assert not PUSHED.exists(), "the push wrote a host file"
    assert_blocked(r)


def test_tag_and_push_refuse_transport_names(daemon: Daemon, proxy: ProxyProcess) -> None:
    # `dir:5000/x` is a registry to dockerd and the directory `5000/x` to Podman's libimage.
    r = call(proxy.addr, "POST", f"/images/{daemon.image}/tag?repo=dir:5000/x&tag=1")
    assert_blocked(r)
    r = call(proxy.addr, "POST", "/images/oci:5000/x/push?tag=1")
    assert_blocked(r)
    r = call(proxy.addr, "POST", f"/images/{daemon.image}/tag?repo=localhost/dso-more-ops&tag=1")
    assert r.status == 201, r.body[:300]
    with contextlib.suppress(OSError):
        daemon.api("DELETE", "/images/localhost/dso-more-ops:1")


def test_rename_cannot_move_a_container_into_a_scoped_rule(
    daemon: Daemon, proxies: ProxyPool
) -> None:
    for name in (OTHER, SCOPED):
        daemon.remove(name)
    proxy = proxies.get(daemon.socket_path, RENAME_RULES)
    try:
        daemon.create(OTHER)
        exec_body = {"Cmd": ["true"]}
        assert_blocked(call(proxy.addr, "POST", f"/containers/{OTHER}/exec", exec_body))
        r = call(proxy.addr, "POST", f"/containers/{OTHER}/rename?name={SCOPED}")
        if r.status == 204:  # renamed: the scoped rule now opens exec into it
            r = call(proxy.addr, "POST", f"/containers/{SCOPED}/exec", exec_body)
            assert r.status != 201, f"exec into a renamed container on {daemon.kind}"
        assert_blocked(r)
        assert daemon.inspect(SCOPED) is None, f"renamed into the scoped rule on {daemon.kind}"
        # A rename that changes no rule's match still works.
        r = call(proxy.addr, "POST", f"/containers/{OTHER}/rename?name={OTHER}-2")
        assert r.status == 204, r.body[:300]
        daemon.remove(f"{OTHER}-2")
    finally:
        for name in (OTHER, SCOPED, f"{OTHER}-2"):
            daemon.remove(name)
