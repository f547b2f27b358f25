"""CLI subcommands of the Kubernetes side: `operator`, `render`, `crd`.

The lead wires `add_commands` into cli.py; each subcommand stores its runner in `func`
(called with the parsed namespace, returning the exit code).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from docker_socket_operator import __version__
from docker_socket_operator.api.models import KIND
from docker_socket_operator.controller.render.common import DEFAULT_METRICS_PORT, RenderOptions

DEFAULT_NAMESPACE = "docker-socket-operator"
# The tag `make image` builds: no registry publishes the image yet (docs/image.md).
DEFAULT_IMAGE = f"docker-socket-operator:{__version__}"


def _selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` → matchLabels."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE], got {text!r}")
        out[key] = value
    return out


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host or "0.0.0.0", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", DEFAULT_NAMESPACE),
        help="namespace of the proxies (the operator's own; env POD_NAMESPACE)",
    )
    p.add_argument(
        "--image",
        default=os.environ.get("PROXY_IMAGE", DEFAULT_IMAGE),
        help="proxy image (env PROXY_IMAGE)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help=f"the proxies' /healthz /readyz /metrics port (default {DEFAULT_METRICS_PORT})",
    )
    p.add_argument(
        "--monitoring-namespace-selector",
        type=_selector,
        default=None,
        metavar="K=V[,K=V]",
        help="namespaces allowed to scrape the proxies' metrics port (with the pod selector)",
    )
    p.add_argument(
        "--monitoring-pod-selector",
        type=_selector,
        default=None,
        metavar="K=V[,K=V]",
        help="pods allowed to scrape the proxies' metrics port",
    )


def _add_podman_kube_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("kubernetes", "podman-kube"),
        default="kubernetes",
        help="kubernetes: what the operator applies; podman-kube: a Pod and ConfigMap for "
        "`podman kube play` on a Podman host",
    )
    p.add_argument(
        "--podman-socket",
        default="rootful",
        metavar="rootful|rootless|PATH",
        help="podman-kube: the host's Podman socket (rootful: /run/podman/podman.sock; "
        "rootless: $XDG_RUNTIME_DIR/podman/podman.sock)",
    )
    p.add_argument(
        "--publish",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="podman-kube: host address and port of the proxy's API (default 127.0.0.1 and "
        "the policy's spec.port)",
    )


def render_options(args: argparse.Namespace) -> RenderOptions:
    peer: dict[str, Any] | None = None
    ns_sel, pod_sel = args.monitoring_namespace_selector, args.monitoring_pod_selector
    if ns_sel is not None or pod_sel is not None:
        # One peer: both selectors hold together (a lone podSelector would mean "in the
        # proxies' own namespace" only).
        peer = {}
        if ns_sel is not None:
            peer["namespaceSelector"] = {"matchLabels": ns_sel} if ns_sel else {}
        if pod_sel is not None:
            peer["podSelector"] = {"matchLabels": pod_sel} if pod_sel else {}
    return RenderOptions(metrics_port=args.metrics_port, monitoring_peer=peer)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    op = sub.add_parser("operator", help="run the Kubernetes operator (kopf)")
    _add_render_options(op)
    op.add_argument(
        "--health-listen",
        type=_host_port,
        default=("0.0.0.0", 8080),
        metavar="HOST:PORT",
        help="/healthz and /readyz",
    )
    op.add_argument(
        "--no-leader-election",
        action="store_true",
        help="run without the Lease (a single replica only)",
    )
    op.add_argument(
        "--controller-name",
        default=os.environ.get("CONTROLLER_NAME", "dockersocket.io/operator"),
        help="this install's name; it serves policies whose spec.controllerName says it",
    )
    op.add_argument(
        "--default-controller",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve policies without spec.controllerName (one install per cluster)",
    )
    op.add_argument(
        "--lease-name", default=None, help="default: dso-<controller name>, one per controller"
    )
    op.add_argument(
        "--lease-namespace",
        default=os.environ.get("LEASE_NAMESPACE", "kube-system"),
        help="where the Lease lives: the same for every install of one controller name",
    )
    op.add_argument(
        "--retry-delay", type=float, default=10.0, help="seconds before a failed repair is retried"
    )
    op.add_argument("--log-format", choices=("json", "text"), default="json", help="default json")
    op.add_argument("--verbose", action="store_true", help="debug logging")
    op.set_defaults(func=run_operator_command)

    rd = sub.add_parser(
        "render",
        help="print the objects the operator would apply for a policy "
        "(--format podman-kube: a Pod and ConfigMap for `podman kube play`)",
    )
    rd.add_argument("-f", "--file", required=True, help="DockerSocketPolicy YAML ('-': stdin)")
    _add_render_options(rd)
    _add_podman_kube_options(rd)
    rd.set_defaults(func=run_render_command)

    crd = sub.add_parser("crd", help="print or write the CustomResourceDefinition")
    crd.add_argument("--output", type=Path, default=None, help="directory to write into")
    crd.set_defaults(func=run_crd_command)


def run_operator_command(args: argparse.Namespace) -> int:
    try:
        from docker_socket_operator.controller.reconcile import OperatorConfig
        from docker_socket_operator.controller.runner import (
            RunOptions,
            configure_logging,
            run_operator,
        )
    except ModuleNotFoundError as exc:  # `pip install .` brings the proxy's dependencies only
        print(
            f"error: the operator needs {exc.name}: pip install 'docker-socket-operator[operator]'",
            file=sys.stderr,
        )
        return 2

    configure_logging(args.log_format == "json", args.verbose)
    opts = RunOptions(
        config=OperatorConfig(
            namespace=args.namespace,
            image=args.image,
            render=render_options(args),
            controller_name=args.controller_name,
            default_controller=args.default_controller,
            retry_delay=args.retry_delay,
        ),
        health_listen=args.health_listen,
        leader_election=not args.no_leader_election,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
    )
    return asyncio.run(run_operator(opts))


def render_stream(
    text: str, namespace: str, image: str, options: RenderOptions
) -> list[dict[str, Any]]:
    """Every DockerSocketPolicy in a YAML stream, validated and rendered (PolicyError)."""
    from docker_socket_operator.controller.render import render

    out: list[dict[str, Any]] = []
    for doc in _policies(text):
        children = render(doc, namespace, image, options)
        if not doc.get("metadata", {}).get("uid"):
            # Only the API server knows the policy's uid; an ownerReference needs it.
            for child in children:
                child["metadata"].pop("ownerReferences", None)
        out.extend(children)
    return out


def render_podman_stream(
    text: str, image: str, options: RenderOptions, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """`render --format podman-kube`: every policy in the stream as a ConfigMap and a Pod."""
    from docker_socket_operator.controller.render.podman_kube import (
        LOOPBACK,
        PodmanKubeOptions,
        podman_socket_path,
        refuse_shared_host_ports,
        render_podman_kube,
    )

    host = PodmanKubeOptions(
        socket_path=podman_socket_path(args.podman_socket, os.environ),
        publish=args.publish or (LOOPBACK, None),
    )
    out: list[dict[str, Any]] = []
    for doc in _policies(text):
        out.extend(render_podman_kube(doc, image, options, host))
    refuse_shared_host_ports(out)
    return out


def _policies(text: str) -> list[dict[str, Any]]:
    """The validated DockerSocketPolicy documents of a YAML stream (PolicyError)."""
    from docker_socket_operator.controller.validate import validate_policy
    from docker_socket_operator.policy.problems import yaml_problem
    from docker_socket_operator.policy.types import PolicyError

    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as exc:
        raise PolicyError(f"not YAML: {yaml_problem(exc)}") from None
    for doc in docs:
        if (
            not isinstance(doc, dict)
            or doc.get("kind") != KIND
            or not (doc.get("metadata") or {}).get("name")
        ):
            raise PolicyError("expected DockerSocketPolicy documents with metadata.name")
        validate_policy(doc)
    return docs


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's policy.yaml) as readable `|` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def run_render_command(args: argparse.Namespace) -> int:
    from docker_socket_operator.policy.problems import os_problem
    from docker_socket_operator.policy.types import PolicyError

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        print(f"cannot read policy file {args.file}: {os_problem(exc)}", file=sys.stderr)
        return 1
    try:
        if args.format == "podman-kube":
            objs = render_podman_stream(text, args.image, render_options(args), args)
        else:
            objs = render_stream(text, args.namespace, args.image, render_options(args))
    except PolicyError as exc:
        print(f"invalid policy: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(
        yaml.dump_all(objs, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)
    )
    return 0


def run_crd_command(args: argparse.Namespace) -> int:
    from docker_socket_operator.api.crd import crd_yaml, write_crds

    if args.output is None:
        sys.stdout.write(crd_yaml())
    else:
        print(write_crds(args.output))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m docker_socket_operator.controller.commands ...` (same as the main CLI)."""
    parser = argparse.ArgumentParser(prog="docker-socket-operator")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
