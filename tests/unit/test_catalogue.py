"""The operation catalogue: every route of every Engine API spec version gets its name back, and
nothing else gets a name (the proxy denies what has none)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from docker_socket_operator.catalogue import build
from docker_socket_operator.catalogue.operations import (
    ALL_OPERATIONS,
    OPERATION_NAMES,
    link_parent,
    match_operation,
    operations_named,
)
from docker_socket_operator.catalogue.types import Operation

REPO_ROOT = Path(__file__).resolve().parents[2]


def specs_dir() -> Path:
    shared = os.environ.get("SHARED")
    base = Path(shared) if shared else REPO_ROOT.parent / "shared"
    return base / "docker-api"


def spec_routes() -> list[tuple[str, str, str, str]]:
    """(version, method, template, name) of every operation of every spec, or [] without specs."""
    if not specs_dir().is_dir():
        return []
    return [
        (path.stem, method, template, name)
        for path in build.spec_files(specs_dir())
        for method, template, name in build.spec_routes(build.load_spec(path))
    ]


SPEC_ROUTES = spec_routes()
NO_SPECS = pytest.mark.skipif(not SPEC_ROUTES, reason=f"no Engine API specs in {specs_dir()}")

# Sample values for route parameters; image-like names carry '/' and ':' on purpose.
SAMPLE_PARAMS = {
    "id": "3f4e1a2b9c7d",
    "checkpoint": "cp1",
}
SAMPLE_NAMES = {
    "images": "registry.example:5000/ci/x:1",
    "plugins": "vieux/sshfs:latest",
    "distribution": "registry.example:5000/ci/x@sha256:" + "a" * 64,
    "volumes": "data",
}


def instantiate(template: str, name: str | None = None) -> tuple[str, dict[str, str]]:
    segment = template.split("/")[1]
    params = dict(SAMPLE_PARAMS, name=name or SAMPLE_NAMES.get(segment, "thing"))
    wanted = {p: params[p] for p in re.findall(r"\{(\w+)\}", template)}
    return template.format(**wanted), wanted


def test_committed_catalogue_is_up_to_date() -> None:
    if not specs_dir().is_dir():
        pytest.skip(f"cannot check operations.json: no specs in {specs_dir()}")
    catalogue = build.Catalogue(specs_dir())
    regenerate = "python -m docker_socket_operator.catalogue.build --specs " + str(specs_dir())
    assert build.JSON_PATH.read_text(encoding="utf-8") == catalogue.to_json(), (
        f"stale: {regenerate}"
    )
    docs = REPO_ROOT / "docs" / "operations.md"
    assert docs.read_text(encoding="utf-8") == catalogue.to_markdown(), f"stale: {regenerate}"


@NO_SPECS
@pytest.mark.parametrize(("version", "method", "template", "name"), SPEC_ROUTES)
def test_every_spec_route_matches_its_operation(
    version: str, method: str, template: str, name: str
) -> None:
    path, params = instantiate(template)
    matched = match_operation(method, path)
    assert matched is not None, f"{version}: {method} {path} unmatched"
    assert (matched.op.name, matched.op.template, matched.params) == (name, template, params)


@pytest.mark.parametrize("op", ALL_OPERATIONS, ids=lambda op: f"{op.method} {op.template}")
def test_every_catalogue_route_matches_itself(op: Operation) -> None:
    path, params = instantiate(op.template)
    matched = match_operation(op.method, path)
    assert matched is not None
    assert matched.op == op
    assert matched.params == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", ""),
        ("GET", "/nope"),
        ("GET", "/containers"),
        ("GET", "/containers/abc"),  # inspect is /containers/{id}/json
        ("POST", "/containers/json"),
        ("HEAD", "/containers/json"),  # HEAD is not GET
        ("get", "/containers/json"),
        ("GET", "/containers/json/extra"),
        ("GET", "/v1.41/containers/json"),  # version prefixes are stripped by parse_target only
        ("GET", "/libpod/containers/json"),  # libpod has no catalogue names
        ("POST", "/images/x/create"),
        ("GET", "/images/x/search"),
        ("GET", "/plugins/x/privileges"),
        ("PATCH", "/containers/x/update"),
        ("GET", "/debug/pprof/heap"),
        ("GET", "/services/a/b"),  # swarm objects route one-segment {id}s
        ("DELETE", "/secrets/a/b"),
        ("GET", "/containers/a/b/checkpoints/c"),
    ],
)
def test_unknown_routes_have_no_operation(method: str, path: str) -> None:
    assert match_operation(method, path) is None


@pytest.mark.parametrize(
    ("method", "path", "name", "params"),
    [
        ("GET", "/images/json", "images.list", {}),
        ("GET", "/images/x/json", "images.inspect", {"name": "x"}),
        ("GET", "/images/json/json", "images.inspect", {"name": "json"}),
        (
            "GET",
            "/images/registry.example:5000/ci/x:1/json",
            "images.inspect",
            {"name": "registry.example:5000/ci/x:1"},
        ),
        ("GET", "/images/x/history/json", "images.inspect", {"name": "x/history"}),
        ("GET", "/images/x/json/history", "images.history", {"name": "x/json"}),
        ("GET", "/images/get", "images.get-all", {}),
        ("GET", "/images/busybox/get", "images.get", {"name": "busybox"}),
        ("GET", "/images/search", "images.search", {}),
        ("POST", "/images/create", "images.create", {}),
        ("POST", "/images/ci/x:1/push", "images.push", {"name": "ci/x:1"}),
        ("DELETE", "/images/a/b/c:1", "images.delete", {"name": "a/b/c:1"}),
        ("GET", "/plugins/privileges", "plugins.privileges", {}),
        ("GET", "/plugins/vieux/sshfs:1/json", "plugins.inspect", {"name": "vieux/sshfs:1"}),
        ("GET", "/distribution/a/b:1/json", "distribution.inspect", {"name": "a/b:1"}),
        ("GET", "/networks/create", "networks.inspect", {"id": "create"}),
        ("POST", "/containers/create", "containers.create", {}),
        ("DELETE", "/containers/create", "containers.delete", {"id": "create"}),
        ("GET", "/containers/x/attach/ws", "containers.attach-websocket", {"id": "x"}),
        ("HEAD", "/_ping", "system.ping", {}),
        ("GET", "/_ping", "system.ping", {}),
        ("POST", "/containers/web/exec", "exec.create", {"id": "web"}),
        ("POST", "/session", "session.create", {}),
        ("POST", "/grpc", "build.grpc", {}),
        ("POST", "/build", "images.build", {}),
        ("POST", "/build/prune", "images.build-prune", {}),
        ("POST", "/commit", "images.commit", {}),
        ("GET", "/system/df", "system.data-usage", {}),
        # dockerd routes containers, execs, volumes and networks as {name:.*}: a legacy link
        # name ("parent/alias") names the container it points to.
        ("GET", "/containers/web/db/json", "containers.inspect", {"id": "web/db"}),
        ("POST", "/containers/a/b/start", "containers.start", {"id": "a/b"}),
        ("DELETE", "/containers/web/db", "containers.delete", {"id": "web/db"}),
        ("DELETE", "/containers/a/b/c", "containers.delete", {"id": "a/b/c"}),
        ("GET", "/containers/a/json/json", "containers.inspect", {"id": "a/json"}),
        ("GET", "/containers/a/b/attach/ws", "containers.attach-websocket", {"id": "a/b"}),
        ("POST", "/containers/a/b/exec", "exec.create", {"id": "a/b"}),
        ("POST", "/containers/x/exec/start", "containers.start", {"id": "x/exec"}),
        ("GET", "/exec/a/b/json", "exec.inspect", {"id": "a/b"}),
        ("DELETE", "/volumes/a/b", "volumes.delete", {"name": "a/b"}),
        ("POST", "/networks/a/b/connect", "networks.connect", {"id": "a/b"}),
        # ... except the checkpoint delete, whose router dockerd registers first.
        (
            "DELETE",
            "/containers/web/checkpoints/c1",
            "containers.checkpoint-delete",
            {"id": "web", "checkpoint": "c1"},
        ),
        (
            "DELETE",
            "/containers/a/b/checkpoints/c1",
            "containers.delete",
            {"id": "a/b/checkpoints/c1"},
        ),
        ("GET", "/containers/a/b/checkpoints", "containers.checkpoint-list", {"id": "a/b"}),
    ],
)
def test_tricky_routes(method: str, path: str, name: str, params: dict[str, str]) -> None:
    matched = match_operation(method, path)
    assert matched is not None
    assert (matched.op.name, matched.params) == (name, params)


def by_name(name: str) -> Operation:
    (op,) = [op for op in ALL_OPERATIONS if op.name == name]
    return op


def test_operation_flags() -> None:
    hijacking = {op.name for op in ALL_OPERATIONS if op.hijack}
    assert hijacking == {"containers.attach", "containers.attach-websocket", "exec.start"}
    reading = {op.name for op in ALL_OPERATIONS if op.reads_files}
    assert reading == {
        "containers.archive",
        "containers.archive-info",
        "containers.export",
        "containers.attach-websocket",
        "images.get",
        "images.get-all",
    }
    assert all(op.writes == (op.method not in ("GET", "HEAD")) for op in ALL_OPERATIONS)
    assert by_name("containers.put-archive").writes


@pytest.mark.parametrize(
    ("name", "target", "section"),
    [
        ("containers.restart", "container", "CONTAINERS"),
        ("containers.list", "none", "CONTAINERS"),
        ("exec.create", "container", "EXEC"),
        ("exec.start", "exec", "EXEC"),
        ("images.inspect", "image", "IMAGES"),
        ("images.build", "none", "BUILD"),
        ("images.build-prune", "none", "BUILD"),
        ("images.commit", "none", "COMMIT"),
        ("volumes.inspect", "volume", "VOLUMES"),
        ("networks.connect", "network", "NETWORKS"),
        ("plugins.enable", "plugin", "PLUGINS"),
        ("secrets.inspect", "other", "SECRETS"),
        ("distribution.inspect", "other", "DISTRIBUTION"),
        ("system.events", "none", "EVENTS"),
        ("system.version", "none", "VERSION"),
        ("system.info", "none", "INFO"),
        ("system.data-usage", "none", "SYSTEM"),
        ("system.auth", "none", "AUTH"),
        ("session.create", "none", "SESSION"),
        ("build.grpc", "none", "GRPC"),
        ("swarm.init", "none", "SWARM"),
        ("tasks.logs", "other", "TASKS"),
    ],
)
def test_targets_and_sections(name: str, target: str, section: str) -> None:
    op = by_name(name)
    assert (op.target, op.section) == (target, section)


CONTRACT_NAMES = [
    "containers.list",
    "containers.create",
    "containers.inspect",
    "containers.logs",
    "containers.start",
    "containers.stop",
    "containers.restart",
    "containers.kill",
    "containers.attach",
    "containers.attach-websocket",
    "containers.archive",
    "containers.archive-info",
    "containers.put-archive",
    "containers.export",
    "containers.delete",
    "containers.prune",
    "containers.update",
    "containers.wait",
    "containers.top",
    "containers.stats",
    "containers.changes",
    "containers.resize",
    "containers.rename",
    "containers.pause",
    "containers.unpause",
    "exec.create",
    "exec.start",
    "exec.resize",
    "exec.inspect",
    "images.list",
    "images.create",
    "images.inspect",
    "images.get",
    "images.get-all",
    "images.load",
    "images.build",
    "images.build-prune",
    "images.push",
    "images.tag",
    "images.delete",
    "images.history",
    "images.search",
    "images.prune",
    "images.commit",
    "system.ping",
    "system.version",
    "system.info",
    "system.events",
    "system.data-usage",
    "system.auth",
    "distribution.inspect",
    "session.create",
    "build.grpc",
]


def test_contract_names_exist() -> None:
    assert set(CONTRACT_NAMES) <= OPERATION_NAMES
    groups = {name.split(".")[0] for name in OPERATION_NAMES}
    for group in ("volumes", "networks", "plugins", "nodes", "swarm", "services", "tasks"):
        assert group in groups
    assert {"secrets", "configs"} <= groups


def test_names_are_group_dot_kebab_and_routes_unique() -> None:
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+(-[a-z]+)*", n) for n in OPERATION_NAMES)
    routes = [(op.method, op.template) for op in ALL_OPERATIONS]
    assert len(routes) == len(set(routes))
    # Only system.ping has two routes (GET and HEAD /_ping).
    assert len(ALL_OPERATIONS) == len(OPERATION_NAMES) + 1


def test_operations_named_globs() -> None:
    assert [op.method for op in operations_named("system.ping")] == ["GET", "HEAD"]
    containers = {op.name for op in operations_named("containers.*")}
    assert {"containers.list", "containers.checkpoint-delete"} <= containers
    assert all(n.startswith("containers.") for n in containers)
    assert {op.name for op in operations_named("*.inspect")} >= {"images.inspect", "exec.inspect"}
    assert operations_named("Containers.*") == []
    assert operations_named("nope") == []


def test_build_names_from_operation_ids() -> None:
    assert build.operation_name("ContainerAttachWebsocket", "Container") == (
        "containers.attach-websocket"
    )
    assert build.operation_name("SwarmUnlockkey", "Swarm") == "swarm.unlockkey"
    assert build.operation_name("ContainerExec", "Exec") == "exec.create"
    with pytest.raises(build.CatalogueError):
        build.operation_name("FooBar", "Foo")
    with pytest.raises(build.CatalogueError):
        build.operation_name("ListContainers", "Container")


@pytest.mark.parametrize(
    ("path", "query", "parent"),
    [
        ("/containers/web/db", {"link": "1"}, "web"),
        ("/containers/web/db", {"link": "True"}, "web"),
        ("/containers/web/db", {"link": " yes "}, "web"),
        ("/containers/web/db", {"link": "0"}, None),  # deletes db's container
        ("/containers/web/db", {"link": "FALSE"}, None),
        ("/containers/web/db", {"link": "none"}, None),
        ("/containers/web/db", {}, None),
        ("/containers/web", {"link": "1"}, None),  # dockerd: no default link to remove
        ("/containers/a/b/c", {"link": "1"}, "a/b"),
    ],
)
def test_link_removal_is_decided_on_the_parent(
    path: str, query: dict[str, str], parent: str | None
) -> None:
    matched = match_operation("DELETE", path)
    assert matched is not None and matched.op.name == "containers.delete"
    assert link_parent(matched.op, matched.params, query) == parent


def test_only_container_delete_removes_links() -> None:
    matched = match_operation("POST", "/containers/web/db/stop")
    assert matched is not None
    assert link_parent(matched.op, matched.params, {"link": "1"}) is None


def test_slash_params_follow_dockerd_routes() -> None:
    spanning = {(op.method, op.template) for op in ALL_OPERATIONS if op.slash_param}
    one_segment = {op.template.split("/")[1] for op in ALL_OPERATIONS if not op.slash_param}
    assert ("DELETE", "/containers/{id}") in spanning
    assert ("DELETE", "/containers/{id}/checkpoints/{checkpoint}") not in spanning
    for op in ALL_OPERATIONS:
        if op.slash_param:
            assert f"{{{op.slash_param}}}" in op.template
    assert {"services", "nodes", "secrets", "configs", "tasks", "swarm"} <= one_segment
