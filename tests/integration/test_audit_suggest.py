"""Audit mode, then `suggest`, then enforce: each seed client (Traefik-like discovery, a restart
bot, a CI runner) runs against the real dockerd through a proxy in audit mode with no rules; the
audit log goes through `docker-socket-operator suggest`; the suggested policy is enforced and
the client runs again. Every call passes both times; the attacks (privileged create, a bind of
/, exec into a hidden container) are denied both times: by the audit floor, then by the policy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.daemons import Daemon, docker_cli
from tests.support.proxyproc import ProxyPool, ProxyProcess, policy_document, proxy_command

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_cli_available")]

JOB = {"ci.example/job": "true"}
HIDDEN = "aud-hidden"
ATTACKS = ("aud-priv", "aud-bind")


@pytest.fixture(scope="module")
def seeds(dockerd: Daemon) -> Iterator[None]:
    dockerd.create("aud-web", labels={"traefik.enable": "true"})
    dockerd.create("aud-rst")
    dockerd.create(HIDDEN)
    yield
    for name in ("aud-web", "aud-rst", HIDDEN, "aud-ci-job", *ATTACKS):
        dockerd.remove(name)


def _client(host: str) -> Any:
    return docker.DockerClient(base_url=host, version="auto", timeout=30)


def discovery(dockerd: Daemon, host: str) -> None:
    client = _client(host)
    assert client.ping() is True
    assert "aud-web" in {c.name for c in client.containers.list()}
    assert client.containers.get("aud-web").labels["traefik.enable"] == "true"
    now = int(time.time())
    list(client.events(since=now - 60, until=now, decode=True, filters={"type": "container"}))


def restart_bot(dockerd: Daemon, host: str) -> None:
    before = (dockerd.inspect("aud-rst") or {})["State"]["StartedAt"]
    r = docker_cli(host, "restart", "-t", "0", "aud-rst")
    assert r.returncode == 0, r.stderr
    assert (dockerd.inspect("aud-rst") or {})["State"]["StartedAt"] != before


def ci_runner(dockerd: Daemon, host: str) -> None:
    client = _client(host)
    c = client.containers.create(dockerd.image, ["sleep", "30"], name="aud-ci-job", labels=JOB)
    try:
        c.start()
        step = c.exec_run(["echo", "step"])
        assert (step.exit_code, step.output) == (0, b"step\n")
        c.kill()
        c.wait(timeout=30)
        c.logs()
    finally:
        c.remove(force=True)
    assert dockerd.inspect("aud-ci-job") is None


def attack(dockerd: Daemon, host: str, labels: dict[str, str]) -> None:
    """What the security suites try, with labels that make the new container visible: only
    the floor (audit) or the create constraints (enforce) stand in the way."""
    api = docker.APIClient(base_url=host, version="1.41", timeout=30)
    for name, host_config in (
        ("aud-priv", api.create_host_config(privileged=True)),
        ("aud-bind", api.create_host_config(binds=["/:/host"])),
    ):
        with pytest.raises(docker.errors.APIError) as exc:
            api.create_container(
                dockerd.image, "true", name=name, labels=labels, host_config=host_config
            )
        assert exc.value.status_code == 403, exc.value
        assert dockerd.inspect(name) is None
    before = dockerd.exec_ids(HIDDEN)
    with pytest.raises(docker.errors.APIError) as exc:
        api.exec_create(HIDDEN, ["id"])
    assert exc.value.status_code in (403, 404), exc.value
    assert dockerd.exec_ids(HIDDEN) <= before
    assert dockerd.privileged_containers() == []


def _run(
    dockerd: Daemon,
    p: ProxyProcess,
    client: Callable[[Daemon, str], None],
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """The client's calls then the attacks; their audit lines, once the attacks are logged."""
    mark = p.audit_mark()
    client(dockerd, p.docker_host)
    calls = len(p.wait_audit(lambda x: True, since=mark))
    attack(dockerd, p.docker_host, labels)
    lines = p.wait_audit(
        lambda x: x.get("operation") == "exec.create" and x.get("decision") == "deny", since=mark
    )
    assert len(lines) >= calls
    return lines


def _suggest(tmp_path: Path, lines: list[dict[str, Any]], current: dict[str, Any]) -> str:
    log = tmp_path / "audit.jsonl"
    # As `kubectl logs` shows it: the proxy's own log lines mixed in.
    log.write_text(
        '{"msg": "listening"}\nplain text\n' + "".join(json.dumps(x) + "\n" for x in lines)
    )
    policy = tmp_path / "current.yaml"
    policy.write_text(yaml.safe_dump(current))
    out = subprocess.run(
        [*proxy_command(), "suggest", str(log), "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


SEEDS = {
    "discovery": (discovery, {"labels": {"traefik.enable": "true"}}, {"traefik.enable": "true"}),
    "restart-bot": (restart_bot, {"names": ["aud-rst"]}, {}),
    "ci-runner": (ci_runner, {"labels": JOB}, JOB),
}


@pytest.mark.parametrize("seed", list(SEEDS))
def test_audit_then_suggest_then_enforce(
    seed: str, dockerd: Daemon, proxies: ProxyPool, seeds: None, tmp_path: Path
) -> None:
    client, visible, labels = SEEDS[seed]
    spec: dict[str, Any] = {
        "mode": "audit",
        "audit": "all",
        "rules": [],
        "visibility": {"containers": visible},
    }
    audited = proxies.get(dockerd.socket_path, **spec)
    lines = _run(dockerd, audited, client, labels)
    decisions = [x["decision"] for x in lines]
    assert decisions.count("deny") == 3, lines  # the attacks, and nothing else
    assert "would-deny" in decisions and "allow" not in decisions
    assert all(
        "audit floor" in x["reason"] or x["rule"] == "visibility"
        for x in lines
        if x["decision"] == "deny"
    )
    status, metrics = audited.get("/metrics", base=audited.metrics_url)
    assert status == 200 and b'decision="would-deny"' in metrics

    text = _suggest(tmp_path, lines, policy_document(spec))
    print(f"\n--- suggested for {seed} ---\n{text}", file=sys.stderr)
    suggested = yaml.safe_load(text)
    assert "mode" not in suggested["spec"]
    assert suggested["spec"]["visibility"] == {"containers": visible}

    enforced = proxies.get(dockerd.socket_path, **suggested["spec"])
    again = _run(dockerd, enforced, client, labels)
    denied = [x for x in again if x["decision"] != "allow"]
    assert [x["decision"] for x in denied] == ["deny"] * 3, denied
    assert {x["operation"] for x in denied} == {"containers.create", "exec.create"}


@pytest.mark.podman
def test_audit_floor_on_podman(podman: Daemon, proxies: ProxyPool) -> None:
    """Podman's inspect of a plain container shows no host power (exec is forwarded as
    would-deny); a privileged create, a bind of / and any libpod route stay denied."""
    podman.create("aud-pm")
    try:
        p = proxies.get(podman.socket_path, [], mode="audit", audit="all")
        api = docker.APIClient(base_url=p.docker_host, version="1.41", timeout=30)
        exec_id = api.exec_create("aud-pm", ["true"])["Id"]
        assert exec_id in podman.exec_ids("aud-pm")
        for name, host_config in (
            ("aud-pm-priv", api.create_host_config(privileged=True)),
            ("aud-pm-bind", api.create_host_config(binds=["/:/host"])),
        ):
            with pytest.raises(docker.errors.APIError) as exc:
                api.create_container(podman.image, "true", name=name, host_config=host_config)
            assert exc.value.status_code == 403
            assert podman.inspect(name) is None
        status, _ = p.get("/v4.0.0/libpod/containers/json")
        assert status == 403
        lines = p.wait_audit(lambda x: x.get("operation") == "libpod")
        assert any(x["decision"] == "would-deny" and x["operation"] == "exec.create" for x in lines)
    finally:
        for name in ("aud-pm", "aud-pm-priv", "aud-pm-bind"):
            podman.remove(name)
