"""Issue 7, classes 3 and 4: redaction and visibility are properties of the data a response
carries, not of its route. A client that sees only `team=ci` containers tries to read a hidden
container's environment, ID, name, address and volume files through every other answer: top
arguments, daemon error texts, network answers, events about volumes and networks, named
volumes. Nothing of it may appear in any byte the proxy sends back, on dockerd and on Podman,
and the client's own containers still work."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.daemons import Daemon, LineReader, docker_cli
from tests.support.proxyproc import ProxyPool
from tests.support.rawhttp import RawResponse, assert_blocked, call
from tests.support.waiting import settled, wait_for

pytestmark = pytest.mark.docker

SECRET = "dl-env-s3cr3t-value"
VOL_SECRET = "dl-volume-s3cr3t-file"
NET = "dl-net"
VOL = "dl-hidden-vol"
RULES: list[dict[str, Any]] = [
    {
        "allow": [
            "containers.*",
            "exec.*",
            "networks.list",
            "networks.inspect",
            "images.inspect",
            "volumes.*",
            "system.events",
            "system.ping",
            "system.version",
        ]
    }
]
VISIBILITY = {"containers": {"labels": {"team": "ci"}}, "redactEnv": True}


@dataclass(frozen=True)
class Scene:
    hidden: str  # full ID of dl-hidden (team=web)
    mine: str  # full ID of dl-mine (team=ci)
    since: int  # before either was created
    hidden_ip: str

    def leaks(self, body: bytes) -> list[str]:
        """What of the hidden container a response shows."""
        marks = [self.hidden, self.hidden[:12], "dl-hidden", SECRET, VOL_SECRET, VOL]
        if self.hidden_ip:
            marks.append(self.hidden_ip)
        return [m for m in marks if m.encode() in body]


def _run(daemon: Daemon, name: str, team: str, host_config: dict[str, Any], cmd: str) -> str:
    daemon.remove(name)
    body = {
        "Image": daemon.image,
        "Cmd": ["sh", "-c", cmd],
        "Env": [f"DL_SECRET={SECRET}"],
        "Labels": {"dso.test": "1", "team": team},
        "StopSignal": "SIGKILL",
        "HostConfig": host_config,
    }
    r = daemon.api("POST", "/containers/create", body, query={"name": name})
    assert r.status == 201, r.body
    cid: str = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    return cid


@pytest.fixture(scope="module")
def scene(daemon: Daemon) -> Iterator[Scene]:
    since = int(time.time()) - 1
    for ref in ("dl-hidden", "dl-mine", "dl-thief", "dl-legit"):
        daemon.remove(ref)
    daemon.api("DELETE", f"/volumes/{VOL}")
    daemon.api("DELETE", f"/networks/{NET}")
    assert daemon.api("POST", "/networks/create", {"Name": NET}).status == 201
    assert daemon.api("POST", "/volumes/create", {"Name": VOL}).status == 201
    hidden = _run(
        daemon,
        "dl-hidden",
        "web",
        {"Binds": [f"{VOL}:/data"], "NetworkMode": NET},
        f"echo {VOL_SECRET} > /data/f && exec sleep 3600",
    )
    mine = _run(daemon, "dl-mine", "ci", {"NetworkMode": NET}, "exec sleep 3600")
    net = daemon.api("GET", f"/networks/{NET}").json()
    ip = str((net.get("Containers") or {}).get(hidden, {}).get("IPv4Address", "")).split("/")[0]
    yield Scene(hidden, mine, since, ip)
    for ref in ("dl-hidden", "dl-mine", "dl-thief", "dl-legit"):
        daemon.remove(ref)
    daemon.api("DELETE", f"/volumes/{VOL}")
    daemon.api("DELETE", f"/networks/{NET}")


@pytest.fixture
def addr(daemon: Daemon, proxies: ProxyPool, scene: Scene) -> tuple[str, int]:
    return proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY).addr


def assert_clean(scene: Scene, r: RawResponse, sent: str = "") -> None:
    """Nothing of the hidden container in the body, beyond what the client sent itself."""
    body = r.body.replace(sent.encode(), b"") if sent else r.body
    assert not scene.leaks(body), (r.status, r.body[:400])


# -- class 3: top arguments that print the environment --------------------------------------


@pytest.mark.parametrize(
    "ps_args",
    ["e", "eww", "aux e", "axe", "auxe", "-o pid,args", "-oargs", "--format=args", "user", "a'e'"],
)
def test_top_env_arguments_are_refused(addr: tuple[str, int], scene: Scene, ps_args: str) -> None:
    q = json.dumps(ps_args)[1:-1].replace(" ", "%20").replace("'", "%27").replace(",", "%2C")
    r = call(addr, "GET", f"/containers/dl-mine/top?ps_args={q}")
    assert_blocked(r)
    assert "redactEnv" in r.message or "environment" in r.message
    assert SECRET.encode() not in r.body


@pytest.mark.parametrize("ps_args", [None, "-ef", "aux"])
def test_top_plain_arguments_work(addr: tuple[str, int], scene: Scene, ps_args: str | None) -> None:
    r = call(addr, "GET", "/containers/dl-mine/top" + (f"?ps_args={ps_args}" if ps_args else ""))
    assert r.status == 200, r.body[:300]
    assert SECRET.encode() not in r.body


# -- class 4a: the daemon's own error texts ------------------------------------------------


def test_create_name_collision_does_not_name_the_hidden_container(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    body = {"Image": daemon.image, "Cmd": ["true"], "Labels": {"team": "ci"}}
    r = call(addr, "POST", "/containers/create?name=dl-hidden", body)
    assert r.status >= 400, r.body
    assert scene.hidden.encode() not in r.body and scene.hidden[:12].encode() not in r.body
    doc = daemon.inspect("dl-hidden") or {}
    assert doc.get("Id") == scene.hidden and doc["Config"]["Labels"]["team"] == "web"


def test_rename_collision_does_not_name_the_hidden_container(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    r = call(addr, "POST", "/containers/dl-mine/rename?name=dl-hidden")
    assert r.status >= 400, r.body
    assert scene.hidden.encode() not in r.body and scene.hidden[:12].encode() not in r.body
    assert (daemon.inspect(scene.mine) or {}).get("Name") == "/dl-mine"
    assert (daemon.inspect(scene.hidden) or {}).get("Name") == "/dl-hidden"


def test_errors_about_visible_containers_keep_their_text(
    addr: tuple[str, int], scene: Scene
) -> None:
    r = call(addr, "POST", "/containers/dl-mine/start")  # already running: 304, no body
    assert r.status in (204, 304)
    r = call(addr, "GET", "/containers/dl-mine/archive?path=/no/such/file")
    assert r.status == 404 and "withheld" not in r.message, r.body


# -- class 4b: networks ------------------------------------------------------------------


def test_network_inspect_lists_only_visible_containers(addr: tuple[str, int], scene: Scene) -> None:
    r = call(addr, "GET", f"/networks/{NET}")
    assert r.status == 200
    assert_clean(scene, r)
    assert list(r.json()["Containers"]) == [scene.mine]


def test_network_list_hides_the_hidden_container(addr: tuple[str, int], scene: Scene) -> None:
    for target in ("/networks", "/networks?verbose=true"):
        r = call(addr, "GET", target)
        assert r.status == 200 and NET in {n["Name"] for n in r.json()}
        assert_clean(scene, r)


# -- class 4c: events about other objects ----------------------------------------------


def test_events_about_networks_and_volumes_follow_their_container(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    for cid in (scene.hidden, scene.mine):
        daemon.api("POST", f"/networks/{NET}/disconnect", {"Container": cid, "Force": True})
        daemon.api("POST", f"/networks/{NET}/connect", {"Container": cid})
    assert daemon.api("POST", "/containers/dl-hidden/restart", query={"t": "0"}).status == 204
    until = int(time.time()) + 1
    r = call(addr, "GET", f"/events?since={scene.since}&until={until}")
    assert r.status == 200
    assert_clean(scene, r)
    events = [json.loads(line) for line in r.body.splitlines() if line.strip()]
    assert any(scene.mine in json.dumps(e) for e in events), events[:5]
    until = int(time.time()) + 1  # Podman reads nothing once `until` is past
    direct = daemon.api("GET", "/events", query={"since": str(scene.since), "until": str(until)})
    assert scene.hidden.encode() in direct.body  # the daemon did report the hidden container


# -- class 4d: named volumes -------------------------------------------------------------


def test_hidden_volume_is_not_listed_nor_inspectable(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    r = call(addr, "GET", "/volumes")
    assert r.status == 200 and VOL not in {v["Name"] for v in r.json()["Volumes"] or []}
    hidden = call(addr, "GET", f"/volumes/{VOL}")
    missing = call(addr, "GET", "/volumes/dl-no-such-volume")
    assert hidden.status == missing.status == 404
    assert hidden.body.replace(VOL.encode(), b"X") == missing.body.replace(
        b"dl-no-such-volume", b"X"
    )
    assert call(addr, "DELETE", f"/volumes/{VOL}?force=1").status == 404
    assert daemon.api("GET", f"/volumes/{VOL}").status == 200


@pytest.mark.parametrize(
    "host_config",
    [
        {"Binds": [f"{VOL}:/loot"]},
        {"Binds": [f"{VOL}:/loot:ro"]},
        {"Mounts": [{"Type": "volume", "Source": VOL, "Target": "/loot"}]},
        {"mounts": [{"type": "VOLUME", "source": VOL, "target": "/loot"}]},
    ],
)
def test_create_cannot_mount_a_hidden_volume(
    daemon: Daemon, addr: tuple[str, int], scene: Scene, host_config: dict[str, Any]
) -> None:
    body = {
        "Image": daemon.image,
        "Cmd": ["cat", "/loot/f"],
        "Labels": {"team": "ci"},
        "HostConfig": host_config,
    }
    r = call(addr, "POST", "/containers/create?name=dl-thief", body)
    try:
        assert_blocked(r)
        assert_clean(scene, r, sent=VOL)
        assert daemon.inspect("dl-thief") is None
    finally:
        daemon.remove("dl-thief")


def test_volume_create_cannot_take_a_hidden_volume(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    r = call(addr, "POST", "/volumes/create", {"Name": VOL, "Labels": {"mine": "1"}})
    assert_blocked(r)
    assert_clean(scene, r, sent=VOL)
    assert (daemon.api("GET", f"/volumes/{VOL}").json().get("Labels") or {}) == {}


def test_own_volumes_still_work(daemon: Daemon, addr: tuple[str, int], scene: Scene) -> None:
    body = {
        "Image": daemon.image,
        "Cmd": ["true"],
        "Labels": {"team": "ci"},
        "HostConfig": {"Binds": ["dl-legit-vol:/data"]},
    }
    r = call(addr, "POST", "/containers/create?name=dl-legit", body)
    try:
        assert r.status == 201, r.body
        listed = call(addr, "GET", "/volumes")
        assert "dl-legit-vol" in {v["Name"] for v in listed.json()["Volumes"]}
        assert_clean(scene, listed)
        assert call(addr, "GET", "/volumes/dl-legit-vol").status == 200
    finally:
        daemon.remove("dl-legit")
        daemon.api("DELETE", "/volumes/dl-legit-vol")


@pytest.mark.parametrize(
    "host_config",
    [
        {"PidMode": "container:dl-hidden"},
        {"NetworkMode": "container:dl-hidden"},
        {"IpcMode": "container:dl-hidden"},
        {"VolumesFrom": ["dl-hidden:ro"]},
        {"Links": ["dl-hidden:db"]},
    ],
)
def test_create_cannot_reach_a_hidden_container_even_when_opened(
    daemon: Daemon, proxies: ProxyPool, scene: Scene, host_config: dict[str, Any]
) -> None:
    # A rule that opens namespaces and VolumesFrom still reaches only visible containers.
    opened = [{**RULES[0], "create": {"hostNamespaces": True, "volumesFrom": True}}]
    addr = proxies.get(daemon.socket_path, opened, visibility=VISIBILITY).addr
    for ref in ("dl-hidden", scene.hidden, scene.hidden[:12]):
        hc = json.loads(json.dumps(host_config).replace("dl-hidden", ref))
        body = {"Image": daemon.image, "Cmd": ["true"], "Labels": {"team": "ci"}, "HostConfig": hc}
        r = call(addr, "POST", "/containers/create?name=dl-thief", body)
        try:
            assert_blocked(r)
            assert_clean(scene, r, sent=ref)
            assert daemon.inspect("dl-thief") is None
        finally:
            daemon.remove("dl-thief")
    body = {
        "Image": daemon.image,
        "Cmd": ["true"],
        "Labels": {"team": "ci"},
        "HostConfig": {"PidMode": "container:dl-mine"},
    }
    r = call(addr, "POST", "/containers/create?name=dl-legit", body)
    try:
        assert r.status == 201, r.body
    finally:
        daemon.remove("dl-legit")


@pytest.mark.usefixtures("docker_cli_available")
def test_docker_cli_works_and_shows_nothing_hidden(
    daemon: Daemon, proxies: ProxyPool, scene: Scene
) -> None:
    host = proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY).docker_host
    for args in (
        ("top", "dl-mine"),
        ("top", "dl-mine", "aux"),
        ("network", "inspect", NET),
        ("network", "ls"),
        ("volume", "ls"),
        ("ps", "-a"),
    ):
        out = docker_cli(host, *args)
        if daemon.kind == "podman" and args[0] == "top":
            # Podman 4 runs the image's ps for these (busybox: empty answer); not the proxy's doing
            assert out.returncode == 0 or b"blocked" not in out.stderr, out.stderr
        else:
            assert out.returncode == 0, (args, out.stderr)
        assert not scene.leaks(out.stdout + out.stderr), (args, out.stdout[:300])
    env = docker_cli(host, "top", "dl-mine", "aux", "e")
    assert env.returncode != 0 and b"blocked by policy" in env.stderr
    assert SECRET.encode() not in env.stdout


def test_image_committed_from_a_hidden_container_does_not_show_it(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    r = daemon.api("POST", "/commit", {}, query={"container": scene.hidden, "repo": "dl-commit"})
    assert r.status == 201, r.body
    try:
        direct = daemon.api("GET", "/v1.41/images/dl-commit/json")
        assert SECRET.encode() in direct.body  # what there is to hide
        for version in ("/v1.41", ""):
            seen = call(addr, "GET", f"{version}/images/dl-commit/json")
            assert seen.status == 200, seen.body[:300]
            body = seen.body.replace(b"dl-commit", b"")
            assert scene.hidden.encode() not in body, body[:400]
            # nor its short ID, the default hostname kept in Config and ContainerConfig
            assert scene.hidden[:12].encode() not in body, body[:400]
    finally:
        daemon.api("DELETE", "/images/dl-commit", query={"force": "1"})


# -- container list filters that name a container ----------------------------------------


@pytest.mark.parametrize("key", ["since", "before"])
def test_list_since_and_before_do_not_tell_a_hidden_container_from_a_missing_one(
    daemon: Daemon, addr: tuple[str, int], scene: Scene, key: str
) -> None:
    def listed(ref: str, legacy: bool = True) -> RawResponse:
        filters = json.dumps({key: [ref]} if legacy else {key: {ref: True}})
        return call(addr, "GET", f"/containers/json?all=1&filters={quote(filters)}")

    missing = listed("dl-no-such-container")
    assert_blocked(missing)
    for ref in ("dl-hidden", scene.hidden, scene.hidden[:12], scene.hidden[:4]):
        for legacy in (True, False):
            r = listed(ref, legacy)
            assert_blocked(r)
            assert r.body.replace(ref.encode(), b"X") == missing.body.replace(
                b"dl-no-such-container", b"X"
            ), (ref, r.body)
    # the daemon itself tells them apart: what the proxy no longer lets through
    direct = daemon.api(
        "GET", "/containers/json", query={"all": "1", "filters": json.dumps({key: ["dl-hidden"]})}
    )
    assert direct.status == 200
    for ref in ("dl-mine", scene.mine, scene.mine[:12]):
        for legacy in (True, False):
            r = listed(ref, legacy)
            assert r.status == 200, (ref, r.body[:300])
            assert_clean(scene, r)
    # relative to the very container decided on: dl-mine was made after dl-hidden
    if key == "before":
        assert scene.mine not in {c["Id"] for c in listed("dl-mine").json()}


# -- a visible container's references to hidden ones --------------------------------------


def _create(daemon: Daemon, name: str, team: str, host_config: dict[str, Any]) -> str:
    daemon.remove(name)
    body = {
        "Image": daemon.image,
        "Cmd": ["sleep", "3600"],
        "Labels": {"dso.test": "1", "team": team},
        "StopSignal": "SIGKILL",
        "HostConfig": host_config,
    }
    r = daemon.api("POST", "/containers/create", body, query={"name": name})
    assert r.status == 201, r.body
    cid: str = r.json()["Id"]
    return cid


@pytest.mark.parametrize("started", [False, True])
def test_a_visible_containers_references_do_not_name_hidden_containers(
    daemon: Daemon, addr: tuple[str, int], scene: Scene, started: bool
) -> None:
    # Made by someone else, straight on the daemon: a team=ci container sharing dl-hidden's
    # namespaces and taking volumes from a second hidden container, and one linked to it.
    names = ("dl-hidden2", "dl-sidecar", "dl-linker")
    hidden2 = _create(daemon, "dl-hidden2", "web", {})
    try:
        refs = {
            "NetworkMode": "container:dl-hidden",
            "PidMode": f"container:{scene.hidden}",
            "IpcMode": "container:dl-hidden",
            "VolumesFrom": ["dl-hidden2:ro"],
        }
        if started or daemon.kind == "podman":
            refs.pop("IpcMode")  # dl-hidden's IPC namespace is not shareable: only stored
        sidecar = _create(daemon, "dl-sidecar", "ci", refs)
        linker = ""  # Podman refuses Links ("link is not supported")
        if daemon.kind == "docker":
            linker = _create(daemon, "dl-linker", "ci", {"Links": ["dl-hidden2:secretalias"]})
        if started:
            assert daemon.api("POST", "/containers/dl-hidden2/start").status == 204
            for cid in filter(None, (sidecar, linker)):
                r = daemon.api("POST", f"/containers/{cid}/start")
                assert r.status == 204, r.body
        direct = daemon.api("GET", "/containers/dl-sidecar/json").body
        assert scene.hidden[:12].encode() in direct or b"dl-hidden" in direct

        def clean(r: RawResponse) -> None:
            assert r.status == 200, r.body[:300]
            assert_clean(scene, r)
            assert hidden2.encode() not in r.body and hidden2[:12].encode() not in r.body

        seen = call(addr, "GET", "/containers/dl-sidecar/json")
        clean(seen)
        hc = seen.json()["HostConfig"]
        assert hc["NetworkMode"] == hc["PidMode"] == "container:"
        assert hc.get("VolumesFrom") in ([], None)
        if linker:
            seen = call(addr, "GET", f"/containers/{linker}/json?size=0")
            clean(seen)
            assert seen.json()["HostConfig"].get("Links") in ([], None)
        listed = call(addr, "GET", "/containers/json?all=1")
        clean(listed)
        modes = {c["Id"]: (c.get("HostConfig") or {}).get("NetworkMode") for c in listed.json()}
        assert modes[sidecar] in ("container:", None)  # Podman's items have no HostConfig
    finally:
        for name in names:
            daemon.remove(name)


def test_a_reference_to_a_visible_container_is_kept(
    daemon: Daemon, addr: tuple[str, int], scene: Scene
) -> None:
    try:
        cid = _create(daemon, "dl-sidecar", "ci", {"PidMode": "container:dl-mine"})
        seen = call(addr, "GET", f"/containers/{cid}/json")
        assert seen.status == 200 and seen.json()["HostConfig"]["PidMode"] in (
            "container:dl-mine",
            f"container:{scene.mine}",
        ), seen.json()["HostConfig"]
    finally:
        daemon.remove("dl-sidecar")


# -- live events about volumes only hidden containers use ---------------------------------


@pytest.mark.usefixtures("docker_cli_available")
def test_live_events_do_not_show_volumes_made_for_hidden_containers(
    daemon: Daemon, proxies: ProxyPool, scene: Scene
) -> None:
    host = proxies.get(daemon.socket_path, RULES, visibility=VISIBILITY).docker_host
    events = LineReader(host, "events", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
    marker = f"container restart {scene.mine}" if daemon.kind == "docker" else scene.mine
    anonymous: list[str] = []

    def restarts() -> int:
        r = daemon.api("POST", "/containers/dl-mine/restart", query={"t": "0"})
        assert r.status == 204
        return sum(marker in line for line in events.drain())

    try:
        wait_for(restarts, 30, "the events stream open (a dl-mine restart shows on it)")
        seen = settled(lambda: sum(marker in line for line in events.drain()), 0.5, 30, "marks")
        body = {
            "Image": daemon.image,
            "Cmd": ["sleep", "3600"],
            "Labels": {"team": "web"},
            "Volumes": {"/anon": {}},
            "HostConfig": {"Binds": ["dl-secretvol:/data"]},
        }
        r = daemon.api("POST", "/containers/create", body, query={"name": "dl-hidden3"})
        assert r.status == 201, r.body
        assert daemon.api("POST", "/containers/dl-hidden3/start").status == 204
        mine = {**body, "Labels": {"team": "ci"}, "Volumes": {}}
        mine["HostConfig"] = {"Binds": ["dl-legit-vol:/data"]}
        r = daemon.api("POST", "/containers/create", mine, query={"name": "dl-legit"})
        assert r.status == 201, r.body
        assert daemon.api("POST", "/containers/dl-legit/start").status == 204
        mounts = (daemon.inspect("dl-hidden3") or {}).get("Mounts") or []
        anonymous = [m["Name"] for m in mounts if m.get("Name") not in (None, "", "dl-secretvol")]
        assert anonymous, mounts
        wait_for(lambda: restarts() > seen, 30, "a dl-mine restart after the volumes were made")
    finally:
        err = events.stop()
        for name in ("dl-hidden3", "dl-legit"):
            daemon.remove(name)
        for vol in ("dl-secretvol", "dl-legit-vol", *anonymous):
            daemon.api("DELETE", f"/volumes/{vol}")
    volume_lines = [line for line in events.seen if line.startswith("volume ")]
    for vol in ("dl-secretvol", *anonymous):
        assert not any(vol in line for line in events.seen), (vol, volume_lines, err)
    if daemon.kind == "docker":  # the volume a visible container mounts still shows
        assert any("dl-legit-vol" in line for line in volume_lines), (volume_lines, err)
