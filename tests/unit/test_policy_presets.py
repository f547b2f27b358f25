"""Each preset allows the calls its clients make and nothing else."""

from __future__ import annotations

import pytest

from docker_socket_operator.api.models import DockerSocketPolicySpec, Rule
from docker_socket_operator.catalogue.operations import ALL_OPERATIONS, match_operation
from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy
from docker_socket_operator.policy.decide import decide
from docker_socket_operator.policy.presets import PRESET_CLIENTS, PRESETS
from docker_socket_operator.policy.types import ContainerFacts, RequestFacts

WEB = ContainerFacts(id="a" * 64, name="web")

# The calls real clients make (method, path), from their source and from watching them.
CLIENT_CALLS: dict[str, list[tuple[str, str]]] = {
    "read-only": [
        ("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version"), ("GET", "/info"),
        ("GET", "/events"), ("GET", "/system/df"), ("GET", "/containers/json"),
        ("GET", "/containers/web/json"), ("GET", "/containers/web/logs"),
        ("GET", "/containers/web/stats"), ("GET", "/containers/web/top"),
        ("GET", "/containers/web/changes"), ("GET", "/images/json"),
        ("GET", "/images/nginx:latest/json"), ("GET", "/images/registry.example/a/b:1/history"),
        ("GET", "/networks"), ("GET", "/networks/bridge"), ("GET", "/volumes"),
        ("GET", "/volumes/data"), ("GET", "/services"), ("GET", "/tasks"), ("GET", "/nodes"),
    ],
    "discovery": [  # Traefik, Caddy docker-proxy
        ("GET", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("GET", "/events"),
        ("GET", "/containers/json"), ("GET", "/containers/web/json"), ("GET", "/networks"),
        ("GET", "/networks/n1"), ("GET", "/services"), ("GET", "/services/s1"), ("GET", "/tasks"),
    ],
    "logs": [  # Dozzle
        ("GET", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("GET", "/events"),
        ("GET", "/containers/json"), ("GET", "/containers/web/json"),
        ("GET", "/containers/web/logs"), ("GET", "/containers/web/stats"),
    ],
    "restart-only": [  # autoheal
        ("GET", "/_ping"), ("GET", "/version"), ("GET", "/containers/json"),
        ("GET", "/containers/web/json"), ("POST", "/containers/web/restart"),
        ("POST", "/containers/web/start"), ("POST", "/containers/web/stop"),
    ],
    "compose-admin": [  # docker compose up/ps/logs/exec/cp/down/pull
        ("GET", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("GET", "/events"),
        ("GET", "/networks"), ("POST", "/networks/create"), ("GET", "/networks/shop_default"),
        ("POST", "/networks/shop_default/connect"), ("DELETE", "/networks/shop_default"),
        ("GET", "/volumes"), ("POST", "/volumes/create"), ("GET", "/volumes/shop_data"),
        ("DELETE", "/volumes/shop_data"), ("GET", "/images/json"), ("GET", "/images/nginx/json"),
        ("POST", "/images/create"), ("DELETE", "/images/nginx"),
        ("GET", "/containers/json"), ("POST", "/containers/create"),
        ("GET", "/containers/web/json"), ("POST", "/containers/web/attach"),
        ("POST", "/containers/web/start"), ("POST", "/containers/web/wait"),
        ("GET", "/containers/web/logs"), ("POST", "/containers/web/stop"),
        ("POST", "/containers/web/kill"), ("DELETE", "/containers/web"),
        ("POST", "/containers/web/exec"), ("POST", "/exec/e1/start"), ("POST", "/exec/e1/resize"),
        ("GET", "/exec/e1/json"), ("GET", "/containers/web/archive"),
        ("HEAD", "/containers/web/archive"), ("PUT", "/containers/web/archive"),
        ("GET", "/containers/web/top"),
    ],
    "ci-runner": [  # GitLab Runner docker executor
        ("GET", "/_ping"), ("GET", "/version"), ("GET", "/info"), ("POST", "/images/create"),
        ("GET", "/images/alpine:3/json"), ("POST", "/volumes/create"), ("GET", "/volumes/cache"),
        ("POST", "/networks/create"), ("GET", "/networks/build-1"),
        ("POST", "/containers/create"), ("POST", "/containers/c1/start"),
        ("POST", "/containers/c1/attach"), ("POST", "/containers/c1/wait"),
        ("GET", "/containers/c1/logs"), ("GET", "/containers/c1/json"),
        ("POST", "/containers/c1/kill"), ("DELETE", "/containers/c1"),
        ("POST", "/containers/c1/exec"), ("POST", "/exec/e1/start"), ("GET", "/exec/e1/json"),
        ("DELETE", "/networks/build-1"), ("DELETE", "/volumes/cache"),
    ],
}  # fmt: skip

# "Reads" that hand out files or secrets: no read preset may allow them.
LEAKY_READS = [
    ("GET", "/containers/web/archive"),
    ("HEAD", "/containers/web/archive"),
    ("GET", "/containers/web/export"),
    ("GET", "/containers/web/attach/ws"),
    ("GET", "/images/nginx/get"),
    ("GET", "/images/get"),
    ("GET", "/swarm"),
    ("GET", "/swarm/unlockkey"),
    ("GET", "/configs/c1"),
]


def preset_policy(name: str) -> CompiledPolicy:
    return compile_policy(DockerSocketPolicySpec(rules=[Rule(preset=name)]))  # type: ignore[arg-type]


def allowed(p: CompiledPolicy, method: str, path: str) -> bool:
    matched = match_operation(method, path)
    assert matched is not None, (method, path)
    req = RequestFacts(
        method=method, api_path=path, op=matched.op, params=matched.params, container=WEB
    )
    return decide(p, req).allow


def test_every_preset_is_documented() -> None:
    assert set(PRESETS) == set(PRESET_CLIENTS) == set(CLIENT_CALLS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_allows_its_clients_calls(name: str) -> None:
    p = preset_policy(name)
    refused = [call for call in CLIENT_CALLS[name] if not allowed(p, *call)]
    assert refused == []


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_denies_everything_else(name: str) -> None:
    p = preset_policy(name)
    opened = {op.name for op in ALL_OPERATIONS if op.name in p.plans}
    assert opened == set(PRESETS[name])
    for op in ALL_OPERATIONS:
        if op.name not in PRESETS[name]:
            assert op.name not in p.plans


@pytest.mark.parametrize("name", ["read-only", "discovery", "logs", "restart-only"])
def test_read_presets_leak_no_files(name: str) -> None:
    p = preset_policy(name)
    assert [call for call in LEAKY_READS if allowed(p, *call)] == []


@pytest.mark.parametrize("name", ["read-only", "discovery", "logs"])
def test_read_presets_write_nothing(name: str) -> None:
    ops = {op.name: op for op in ALL_OPERATIONS}
    assert [n for n in PRESETS[name] if ops[n].writes] == []


def test_no_preset_prunes_builds_or_touches_swarm_and_plugins() -> None:
    for name, ops in PRESETS.items():
        bad = [
            n
            for n in ops
            if n.endswith(".prune")
            or n.startswith(("swarm.", "plugins.", "secrets.", "configs."))
            or n in ("images.build", "session.create", "build.grpc", "containers.export")
        ]
        assert bad == [], name


def test_ci_runner_create_is_checked() -> None:
    p = preset_policy("ci-runner")
    matched = match_operation("POST", "/containers/create")
    assert matched is not None and p.needs_body(matched.op)
    from docker_socket_operator.policy.body import decode_docker_json

    body = decode_docker_json(b'{"Image": "alpine", "HostConfig": {"Privileged": true}}')
    req = RequestFacts(method="POST", api_path="/containers/create", op=matched.op, body=body)
    assert not decide(p, req).allow


def test_scoped_compose_admin_as_documented() -> None:
    """The docs/presets.md example: project-scoped container calls plus an unscoped rule."""
    from docker_socket_operator.policy.body import decode_docker_json

    spec = DockerSocketPolicySpec.model_validate(
        {
            "rules": [
                {"preset": "compose-admin", "containers": {"composeProject": "shop"}},
                {
                    "allow": [
                        "system.ping", "system.version", "system.info",
                        "networks.list", "networks.inspect", "networks.create", "networks.delete",
                        "networks.connect", "volumes.list", "volumes.inspect", "volumes.create",
                        "volumes.delete", "images.list", "images.inspect", "images.create",
                        "images.tag",
                    ]
                },
            ]
        }
    )  # fmt: skip
    p = compile_policy(spec)
    shop = ContainerFacts(
        id="c" * 64, name="shop-web-1", labels={"com.docker.compose.project": "shop"}
    )
    other = ContainerFacts(
        id="d" * 64, name="blog-web-1", labels={"com.docker.compose.project": "blog"}
    )

    def ok(
        method: str, path: str, container: ContainerFacts | None = None, body: bytes = b""
    ) -> bool:
        matched = match_operation(method, path)
        assert matched is not None
        req = RequestFacts(
            method=method,
            api_path=path,
            op=matched.op,
            container=container,
            body=decode_docker_json(body),
        )
        return decide(p, req).allow

    assert ok("GET", "/_ping") and ok("POST", "/networks/create") and ok("POST", "/images/create")
    assert ok(
        "POST",
        "/containers/create",
        body=b'{"Image":"x","Labels":{"com.docker.compose.project":"shop"}}',
    )
    assert not ok("POST", "/containers/create", body=b'{"Image":"x"}')
    assert ok("POST", "/containers/x/stop", shop) and not ok("POST", "/containers/x/stop", other)
    assert ok("GET", "/containers/json") and p.filters_containers
    assert not ok("POST", "/containers/prune") and not ok("DELETE", "/images/nginx")
