"""The proxy shell's pure helpers: the request sent upstream, metrics text, policy reloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.policy.types import PolicyError
from docker_socket_operator.proxy.http1 import parse_request_head
from docker_socket_operator.proxy.messages import rewrite_path, upstream_request_head
from docker_socket_operator.proxy.metrics import Metrics
from docker_socket_operator.proxy.reload import PolicyHolder, PolicyWatcher, load_from_file

POLICY = """apiVersion: dockersocket.io/v1alpha1
kind: DockerSocketPolicy
metadata: {name: t}
spec:
  rules:
    - allow: [%s]
"""


def _head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_upstream_request_is_rebuilt_without_hop_by_hop_headers() -> None:
    req = parse_request_head(
        _head(
            "POST /v1.41/containers/web/exec HTTP/1.1",
            "Host: evil",
            "Connection: keep-alive, X-Registry-Auth",
            "Transfer-Encoding: chunked",
            "Content-Type: application/json",
            "X-Registry-Auth: abc",
            "Expect: 100-continue",
        )
    )
    target = parse_target(req.target)
    path = rewrite_path("/containers/{id}/exec", {"id": "web"}, "f" * 64)
    out = upstream_request_head(req, target, path, 12, hijack=False)
    assert out == _head(
        f"POST /v1.41/containers/{'f' * 64}/exec HTTP/1.1",
        "Host: docker",
        "Content-Type: application/json",
        "X-Registry-Auth: abc",
        "Content-Length: 12",
    )


def test_hijack_keeps_dockers_upgrade_only_for_hijack_operations() -> None:
    req = parse_request_head(
        _head("POST /exec/abc/start HTTP/1.1", "Connection: Upgrade", "Upgrade: tcp")
    )
    target = parse_target(req.target)
    assert b"Upgrade: tcp" in upstream_request_head(req, target, None, None, hijack=True)
    assert b"Upgrade" not in upstream_request_head(req, target, None, None, hijack=False)


def test_metrics_text() -> None:
    m = Metrics()
    m.observe("containers.list", "allow", 0.002)
    m.observe("containers.kill", "deny", 0.0001)
    text = m.render()
    assert (
        'docker_socket_proxy_requests_total{operation="containers.list",decision="allow"} 1' in text
    )
    assert 'docker_socket_proxy_request_duration_seconds_bucket{le="+Inf"} 2' in text
    assert "docker_socket_proxy_open_connections 0" in text


def test_reload_follows_a_configmap_style_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes re-points `..data`; the file's own path never changes."""
    for gen, op in (("v1", "system.ping"), ("v2", "containers.list")):
        (tmp_path / gen).mkdir()
        (tmp_path / gen / "policy.yaml").write_text(POLICY % op)
    os.symlink("v1", tmp_path / "..data")
    os.symlink("..data/policy.yaml", tmp_path / "policy.yaml")
    path = str(tmp_path / "policy.yaml")
    metrics = Metrics()
    policy, digest = load_from_file(path)
    holder = PolicyHolder(policy, path, digest, metrics)
    watcher = PolicyWatcher(path, holder)
    assert not watcher.check()
    os.symlink("v2", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert watcher.check()
    assert holder.policy is not policy and metrics.policy_generation == 2
    assert metrics.reloads["success"] == 1


def test_a_broken_policy_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % "system.ping")
    metrics = Metrics()
    policy, digest = load_from_file(str(path))
    holder = PolicyHolder(policy, str(path), digest, metrics)
    watcher = PolicyWatcher(str(path), holder)
    path.write_text(POLICY % "no.such-operation-at-all")
    assert not watcher.check()
    assert holder.policy is policy and metrics.reloads["failure"] == 1


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_an_empty_policy_file_is_refused_on_reload_and_at_start(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % "system.ping")
    metrics = Metrics()
    policy, digest = load_from_file(str(path))
    holder = PolicyHolder(policy, str(path), digest, metrics)
    watcher = PolicyWatcher(str(path), holder)
    path.write_text(content)  # a writer caught between truncate and write
    assert not watcher.check()
    assert holder.policy is policy and metrics.reloads["failure"] == 1
    assert "policy reload failed" in capsys.readouterr().err
    path.write_text(POLICY % "system.version")  # the write completes: picked up
    assert watcher.check() and holder.policy is not policy
    path.write_text(content)
    with pytest.raises(PolicyError, match="empty"):
        load_from_file(str(path))
