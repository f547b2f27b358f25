"""Presets with the calls real clients make: docker-py as Traefik/Caddy discovery does it,
the docker CLI for restart-only and compose-admin, docker-py as a CI runner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cli_available")]


@pytest.fixture(scope="module")
def apps(dockerd: Daemon) -> Iterator[dict[str, str]]:
    ids = {
        "disc-app": dockerd.create("disc-app", labels={"traefik.enable": "true"}),
        "rst": dockerd.create("rst"),
        "shop-app": dockerd.create("shop-app", labels={"com.docker.compose.project": "shop"}),
        "other-app": dockerd.create("other-app", labels={"com.docker.compose.project": "other"}),
    }
    yield ids
    for name in ids:
        dockerd.remove(name)


def _client(host: str) -> Any:
    return docker.DockerClient(base_url=host, version="auto", timeout=30)


def _started(d: Daemon, name: str) -> str:
    started: str = (d.inspect(name) or {})["State"]["StartedAt"]
    return started


def test_discovery_with_docker_py(
    dockerd: Daemon, proxies: ProxyPool, apps: dict[str, str]
) -> None:
    p = proxies.get(dockerd.socket_path, [{"preset": "discovery"}])
    client = _client(p.docker_host)
    assert client.ping() is True
    assert client.version()["ApiVersion"]
    names = {c.name for c in client.containers.list()}
    assert "disc-app" in names
    c = client.containers.get("disc-app")
    assert c.labels["traefik.enable"] == "true"
    since = int(time.time()) - 1
    assert dockerd.api("POST", "/containers/disc-app/restart", query={"t": "0"}).status == 204
    events = list(
        client.events(
            since=since, until=int(time.time()) + 2, decode=True, filters={"container": "disc-app"}
        )
    )
    assert any(e.get("status") == "start" or e.get("Action") == "start" for e in events), events
    with pytest.raises(docker.errors.APIError) as exc:
        client.containers.create(dockerd.image, "true", name="disc-evil")
    assert exc.value.status_code == 403 and "blocked by policy" in str(exc.value)
    with pytest.raises(docker.errors.APIError):
        c.restart(timeout=0)
    assert dockerd.inspect("disc-evil") is None


def test_restart_only_with_cli(dockerd: Daemon, proxies: ProxyPool, apps: dict[str, str]) -> None:
    p = proxies.get(dockerd.socket_path, [{"preset": "restart-only"}])
    before = _started(dockerd, "rst")
    r = docker_cli(p.docker_host, "restart", "-t", "0", "rst")
    assert r.returncode == 0, r.stderr
    assert _started(dockerd, "rst") != before
    rm = docker_cli(p.docker_host, "rm", "-f", "rst")
    assert rm.returncode != 0 and b"blocked by policy" in rm.stderr, rm.stderr
    assert dockerd.inspect("rst") is not None
    ex = docker_cli(p.docker_host, "exec", "rst", "true")
    assert ex.returncode != 0 and b"blocked by policy" in ex.stderr


def test_compose_admin_scoped_to_project(
    dockerd: Daemon, proxies: ProxyPool, apps: dict[str, str]
) -> None:
    p = proxies.get(
        dockerd.socket_path,
        [
            {"allow": ["system.ping", "system.version", "containers.list"]},
            {"preset": "compose-admin", "containers": {"composeProject": "shop"}},
        ],
    )
    assert docker_cli(p.docker_host, "stop", "-t", "0", "shop-app").returncode == 0
    assert not (dockerd.inspect("shop-app") or {})["State"]["Running"]
    assert docker_cli(p.docker_host, "start", "shop-app").returncode == 0
    assert (dockerd.inspect("shop-app") or {})["State"]["Running"]
    logs = docker_cli(p.docker_host, "logs", "shop-app")
    assert logs.returncode == 0, logs.stderr
    other = docker_cli(p.docker_host, "stop", "-t", "0", "other-app")
    assert other.returncode != 0 and b"blocked by policy" in other.stderr, other.stderr
    assert (dockerd.inspect("other-app") or {})["State"]["Running"]
    rm = docker_cli(p.docker_host, "rm", "-f", "other-app")
    assert rm.returncode != 0
    assert dockerd.inspect("other-app") is not None
    # Creates are scoped by the labels in the body: compose labels its containers.
    label = "com.docker.compose.project"
    try:
        ok = docker_cli(
            p.docker_host,
            "create",
            "--label",
            f"{label}=shop",
            "--name",
            "shop-new",
            dockerd.image,
            "true",
        )
        assert ok.returncode == 0, ok.stderr
        bad = docker_cli(
            p.docker_host,
            "create",
            "--label",
            f"{label}=other",
            "--name",
            "other-new",
            dockerd.image,
            "true",
        )
        assert bad.returncode != 0 and b"blocked by policy" in bad.stderr
        bare = docker_cli(p.docker_host, "create", "--name", "bare-new", dockerd.image, "true")
        assert bare.returncode != 0
        assert dockerd.inspect("other-new") is None and dockerd.inspect("bare-new") is None
    finally:
        for n in ("shop-new", "other-new", "bare-new"):
            dockerd.remove(n)


def test_ci_runner_with_docker_py(dockerd: Daemon, proxies: ProxyPool) -> None:
    p = proxies.get(dockerd.socket_path, [{"preset": "ci-runner"}])
    client = _client(p.docker_host)
    c = client.containers.create(dockerd.image, ["sh", "-c", "echo built"], name="ci-job")
    try:
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert c.logs() == b"built\n"
    finally:
        c.remove(force=True)
    assert dockerd.inspect("ci-job") is None
    with pytest.raises(docker.errors.APIError) as exc:
        client.containers.create(dockerd.image, "true", name="ci-priv", privileged=True)
    assert exc.value.status_code == 403
    with pytest.raises(docker.errors.APIError):
        client.containers.create(dockerd.image, "true", name="ci-bind", volumes=["/:/host"])
    assert dockerd.inspect("ci-priv") is None and dockerd.inspect("ci-bind") is None
    assert dockerd.privileged_containers() == []


def test_read_only_with_cli(dockerd: Daemon, proxies: ProxyPool, apps: dict[str, str]) -> None:
    p = proxies.get(dockerd.socket_path, [{"preset": "read-only"}])
    ps = docker_cli(p.docker_host, "ps", "--format", "{{.Names}}")
    assert ps.returncode == 0 and b"disc-app" in ps.stdout
    assert docker_cli(p.docker_host, "inspect", "disc-app").returncode == 0
    assert docker_cli(p.docker_host, "images").returncode == 0
    stop = docker_cli(p.docker_host, "stop", "disc-app")
    assert stop.returncode != 0 and b"blocked by policy" in stop.stderr


def test_logs_preset(dockerd: Daemon, proxies: ProxyPool, apps: dict[str, str]) -> None:
    p = proxies.get(dockerd.socket_path, [{"preset": "logs"}])
    assert docker_cli(p.docker_host, "logs", "disc-app").returncode == 0
    restart = docker_cli(p.docker_host, "restart", "disc-app")
    assert restart.returncode != 0 and b"blocked by policy" in restart.stderr
