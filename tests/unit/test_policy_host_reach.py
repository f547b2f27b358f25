"""Image references, import sources, build parameters and network bodies: what reaches outside
the daemon's own stores is refused (integration: tests/integration/test_host_reach.py)."""

from __future__ import annotations

import pytest

from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.networks import check_network_create_body
from docker_socket_operator.policy.queries import query_reason
from docker_socket_operator.policy.sources import image_reference_reason

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "ref",
    ["busybox", "busybox:1.36", "docker:dind", "localhost:5000/a/b:t", f"quay.io/a/b@{DIGEST}",
     DIGEST, "a" * 12, "registry.example.com:443/team/app:v1"],
)  # fmt: skip
def test_plain_references_pass(ref: str) -> None:
    assert image_reference_reason(ref, "ref") is None


@pytest.mark.parametrize(
    "ref",
    ["/etc", "../x", "docker-archive:/x.tar", "oci-archive:/x", "dir:/etc", "dir:5000/x", "oci:x",
     "containers-storage:[vfs@/x]y", "a,type=bind", "Busybox", "docker://busybox", "", 1],
)  # fmt: skip
def test_transports_and_paths_are_refused(ref: object) -> None:
    assert image_reference_reason(ref, "ref") is not None


@pytest.mark.parametrize(
    ("op", "query", "ok"),
    [
        ("images.create", {"fromImage": "busybox", "tag": "latest"}, True),
        ("images.create", {"fromSrc": "-", "repo": "x"}, True),
        ("images.create", {"fromSrc": "/etc/backup.tar"}, False),
        ("images.create", {"fromSrc": "http://169.254.169.254/"}, False),
        ("images.create", {"fromImage": "busybox", "tag": "x,y"}, False),
        ("images.build", {"t": "a", "dockerfile": "sub/Dockerfile", "networkmode": "none"}, True),
        ("images.build", {"networkmode": "host"}, False),
        ("images.build", {"addcaps": '["ALL"]'}, False),
        ("images.build", {"remote": "https://example.com/x.git"}, False),
        ("images.build", {"dockerfile": "../../etc/passwd"}, False),
        ("images.build", {"dockerfile": "/etc/passwd"}, False),
        ("containers.list", {"anything": "x"}, True),
        ("containers.start", {}, True),
        ("containers.start", {"detachKeys": "ctrl-p,ctrl-q"}, True),
        ("containers.start", {"checkpoint": ""}, True),
        ("containers.start", {"checkpoint": "../../../../etc"}, False),
        ("containers.start", {"checkpoint": "c1"}, False),
        ("containers.start", {"checkpoint-dir": "/tmp/x"}, False),
    ],
)
def test_query_checks(op: str, query: dict[str, str], ok: bool) -> None:
    assert (query_reason(op, query) is None) is ok


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b'{"Name":"n","Driver":"bridge","IPAM":{"Driver":"default","Config":[]}}', True),
        (b'{"Name":"n","Options":{"com.docker.network.driver.mtu":"1400"}}', True),
        (b'{"Name":"n","ConfigFrom":null}', True),
        (b'{"Name":"n","Driver":"macvlan","Options":{"parent":"eth0"}}', False),
        (b'{"Name":"n","driver":"ipvlan"}', False),
        (b'{"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}}', False),
        (b'{"Name":"n","IPAM":{"Config":[{"Subnet":"169.254.169.254/32"}]}}', False),
        (b'{"Name":"n","ConfigFrom":{"Network":"x"}}', False),
        (b'{"Name":"n","Scope":"swarm"}', False),
        (b'{"Name":"n","Surprise":1}', False),
    ],
)
def test_network_bodies(body: bytes, ok: bool) -> None:
    assert (check_network_create_body(decode_docker_json(body)) is None) is ok
