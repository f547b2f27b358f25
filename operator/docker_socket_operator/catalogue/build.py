"""Build the operation catalogue (operations.json and docs/operations.md) from the Engine API specs.

    python -m docker_socket_operator.catalogue.build --specs ../shared/docker-api

Every (method, path) of every spec version becomes one Operation, named after its tag group and
operationId ("ContainerRestart" -> "containers.restart"). The union over versions is what the proxy
routes: a client speaking v1.41 and one speaking v1.56 go through the same catalogue, and anything
not in it is denied. Output is sorted so that regenerating an unchanged catalogue is a no-op (a
unit test regenerates it in memory and fails when the committed files are stale).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from docker_socket_operator.catalogue.types import Operation, TargetKind

HTTP_METHODS = ("get", "head", "post", "put", "delete", "patch", "options")

# Swagger tag -> operation group (the part before the dot).
TAG_GROUPS: Mapping[str, str] = {
    "Container": "containers",
    "Image": "images",
    "System": "system",
    "Exec": "exec",
    "Volume": "volumes",
    "Network": "networks",
    "Plugin": "plugins",
    "Node": "nodes",
    "Swarm": "swarm",
    "Service": "services",
    "Task": "tasks",
    "Secret": "secrets",
    "Config": "configs",
    "Distribution": "distribution",
    "Session": "session",
}

# operationIds that do not read as "<Tag><Action>" (or whose plain reading would be misleading).
NAME_OVERRIDES: Mapping[str, str] = {
    "ContainerExec": "exec.create",  # tagged Exec; creates an exec instance in a container
    "SystemPingHead": "system.ping",  # HEAD /_ping is the same operation as GET /_ping
    "PutContainerArchive": "containers.put-archive",
    "GetPluginPrivileges": "plugins.privileges",
    "Session": "session.create",
    "ImageGetAll": "images.get-all",
    "BuildPrune": "images.build-prune",  # tagged Image
    "ImageCommit": "images.commit",
    "SystemAuth": "system.auth",
}

# Routes dockerd serves that no spec version describes. Unknown routes are denied anyway; naming
# these lets a policy allow them on purpose (BuildKit's /grpc, checkpoints, classic build cancel).
EXTRA_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/grpc", "build.grpc"),
    ("POST", "/build/cancel", "images.build-cancel"),
    ("GET", "/containers/{id}/checkpoints", "containers.checkpoint-list"),
    ("POST", "/containers/{id}/checkpoints", "containers.checkpoint-create"),
    ("DELETE", "/containers/{id}/checkpoints/{checkpoint}", "containers.checkpoint-delete"),
)

# attach/ws hijacks too: a websocket upgrade (101), then a raw byte tunnel.
HIJACKING = frozenset({"containers.attach", "containers.attach-websocket", "exec.start"})
# GET/HEAD operations that hand out file contents (or a terminal): "read-only" in name only.
READS_FILES = frozenset(
    {
        "containers.archive",
        "containers.archive-info",
        "containers.export",
        "containers.attach-websocket",
        "images.get",
        "images.get-all",
    }
)

# First path segment -> Tecnativa docker-socket-proxy variable that governs it.
SECTIONS: Mapping[str, str] = {
    "containers": "CONTAINERS",
    "images": "IMAGES",
    "exec": "EXEC",
    "events": "EVENTS",
    "_ping": "PING",
    "version": "VERSION",
    "info": "INFO",
    "system": "SYSTEM",
    "auth": "AUTH",
    "build": "BUILD",
    "commit": "COMMIT",
    "configs": "CONFIGS",
    "distribution": "DISTRIBUTION",
    "grpc": "GRPC",
    "networks": "NETWORKS",
    "nodes": "NODES",
    "plugins": "PLUGINS",
    "secrets": "SECRETS",
    "services": "SERVICES",
    "session": "SESSION",
    "swarm": "SWARM",
    "tasks": "TASKS",
    "volumes": "VOLUMES",
}

# First path segment -> kind of object a path parameter there names.
TARGET_KINDS: Mapping[str, TargetKind] = {
    "containers": "container",
    "exec": "exec",
    "images": "image",
    "volumes": "volume",
    "networks": "network",
    "plugins": "plugin",
}


# First path segment -> the path parameter dockerd routes as `{name:.*}`: it may span '/'. A
# container named through a legacy link ("parent/alias") and image, plugin or distribution
# references ("registry:5000/ci/x:1") contain '/'. Swarm objects and checkpoints route `{id}` /
# `{name}`: one segment.
SLASH_PARAMS: Mapping[str, str] = {
    "containers": "id",
    "exec": "id",
    "images": "name",
    "plugins": "name",
    "distribution": "name",
    "volumes": "name",
    "networks": "id",
}
# dockerd routes these with a one-segment `{name}` although their group spans '/'.
ONE_SEGMENT_ROUTES = frozenset({("DELETE", "/containers/{id}/checkpoints/{checkpoint}")})


class CatalogueError(Exception):
    """The specs cannot be turned into a consistent catalogue (unknown tag, conflicting ids)."""


def kebab(camel: str) -> str:
    """'AttachWebsocket' -> 'attach-websocket'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", camel).lower()


def operation_name(operation_id: str, tag: str) -> str:
    if operation_id in NAME_OVERRIDES:
        return NAME_OVERRIDES[operation_id]
    group = TAG_GROUPS.get(tag)
    if group is None:
        raise CatalogueError(f"{operation_id}: unknown tag {tag!r}")
    if not operation_id.startswith(tag) or operation_id == tag:
        raise CatalogueError(
            f"{operation_id}: does not start with its tag {tag!r}; add an override"
        )
    return f"{group}.{kebab(operation_id[len(tag) :])}"


def first_segment(template: str) -> str:
    return template.split("/", 2)[1]


def make_operation(name: str, method: str, template: str) -> Operation:
    segment = first_segment(template)
    section = "EXEC" if name == "exec.create" else SECTIONS.get(segment)
    if section is None:
        raise CatalogueError(f"{method} {template}: no Tecnativa section for /{segment}")
    has_param = "{" in template
    target: TargetKind = TARGET_KINDS.get(segment, "other") if has_param else "none"
    slash_param = SLASH_PARAMS.get(segment, "")
    if f"{{{slash_param}}}" not in template or (method, template) in ONE_SEGMENT_ROUTES:
        slash_param = ""
    return Operation(
        name=name,
        method=method,
        template=template,
        target=target,
        hijack=name in HIJACKING,
        writes=method not in ("GET", "HEAD"),
        reads_files=name in READS_FILES,
        section=section,
        slash_param=slash_param,
    )


def load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise CatalogueError(f"{path}: not a Swagger document with paths")
    return spec


def spec_routes(spec: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    """(method, template, name) for every operation of one spec."""
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue  # path-level "parameters"
            tags = op.get("tags") or []
            operation_id = op.get("operationId")
            if not operation_id or len(tags) != 1:
                raise CatalogueError(
                    f"{method.upper()} {template}: needs an operationId and one tag"
                )
            yield method.upper(), template, operation_name(operation_id, tags[0])


def spec_files(specs_dir: Path) -> list[Path]:
    def version_key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.stem))

    files = sorted(specs_dir.glob("v*.yaml"), key=version_key)
    if not files:
        raise CatalogueError(f"no v*.yaml specs in {specs_dir}")
    return files


class Catalogue:
    """The built catalogue: operations plus, per route, the spec versions that describe it."""

    def __init__(self, specs_dir: Path) -> None:
        self.versions: list[str] = []
        names: dict[tuple[str, str], str] = {}
        self.seen_in: dict[tuple[str, str], list[str]] = {}
        for path in spec_files(specs_dir):
            version = path.stem
            self.versions.append(version)
            for method, template, name in spec_routes(load_spec(path)):
                key = (method, template)
                if names.setdefault(key, name) != name:
                    raise CatalogueError(f"{method} {template}: named {names[key]} and {name}")
                self.seen_in.setdefault(key, []).append(version)
        for method, template, name in EXTRA_ROUTES:
            if (method, template) in names:
                raise CatalogueError(f"{method} {template} is in the specs now; drop it from EXTRA")
            names[(method, template)] = name
        ops = [make_operation(name, m, t) for (m, t), name in names.items()]
        self.operations: list[Operation] = sorted(ops, key=lambda o: (o.name, o.method, o.template))

    def to_json(self) -> str:
        doc = {
            "spec_versions": self.versions,
            "operations": [asdict(op) for op in self.operations],
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def versions_label(self, op: Operation) -> str:
        seen = self.seen_in.get((op.method, op.template))
        if not seen:
            return "dockerd only"
        if seen == self.versions:
            return "all"
        if seen == self.versions[self.versions.index(seen[0]) :]:
            return f"{seen[0]}+"
        return ", ".join(seen)

    def to_markdown(self) -> str:
        lines = [
            "# Docker Engine API operations",
            "",
            "Generated by `python -m docker_socket_operator.catalogue.build` from the Engine API specs",
            f"({', '.join(self.versions)}); do not edit. Rules name operations (globs such as",
            "`containers.*` work); a request whose route is not listed here is denied.",
            "",
            "Section is the Tecnativa docker-socket-proxy variable that governs the route. Flags:",
            "**W** changes daemon state, **H** may hijack the connection into a raw stream,",
            "**F** hands out file contents although it does not write. Specs: the spec versions",
            "that describe the route (`dockerd only` = served by dockerd, absent from the specs).",
            "A parameter written `{id:.*}` may contain '/' as in dockerd's own route (a container",
            "named by its legacy link `parent/alias`, an image `registry:5000/ci/x:1`); every other",
            "parameter is one path segment.",
            "",
            "| Operation | Method | Route | Section | Target | Flags | Specs |",
            "|---|---|---|---|---|---|---|",
        ]
        for op in self.operations:
            flags = "".join(
                f for f, on in (("W", op.writes), ("H", op.hijack), ("F", op.reads_files)) if on
            )
            route = op.template
            if op.slash_param:
                route = route.replace(f"{{{op.slash_param}}}", f"{{{op.slash_param}:.*}}")
            lines.append(
                f"| `{op.name}` | {op.method} | `{route}` | {op.section} | {op.target} "
                f"| {flags} | {self.versions_label(op)} |"
            )
        return "\n".join(lines) + "\n"


PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[2]
JSON_PATH = PACKAGE_DIR / "operations.json"
DOCS_PATH = REPO_ROOT / "docs" / "operations.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, required=True, help="directory of v*.yaml specs")
    parser.add_argument("--out", type=Path, default=JSON_PATH, help="operations.json to write")
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="operations.md to write")
    args = parser.parse_args(argv)
    try:
        catalogue = Catalogue(args.specs)
    except (CatalogueError, OSError, yaml.YAMLError) as e:
        print(f"catalogue: {e}", file=sys.stderr)
        return 1
    args.out.write_text(catalogue.to_json(), encoding="utf-8")
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(catalogue.to_markdown(), encoding="utf-8")
    names = {op.name for op in catalogue.operations}
    print(f"{len(catalogue.operations)} operations, {len(names)} names -> {args.out}, {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
