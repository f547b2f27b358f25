"""One entry point: `docker-socket-operator <subcommand>`.

Subcommands register themselves through a `register_<name>(subparsers)` function listed in
REGISTRARS; each sets `func` (args -> exit code) with `set_defaults`. To add one (operator,
render, crd...), write its register function and append it to REGISTRARS.

proxy: `proxy --listen HOST:PORT|unix:/path [--listen ...] --socket PATH [--policy FILE]
       [--metrics-listen HOST:PORT|none] [--audit-log FILE|-] [--head-timeout S] [--idle-timeout S]
       [--body-timeout S] [--max-connections N] [--max-connections-per-client N]`. Without --policy the Tecnativa
       docker-socket-proxy variables (CONTAINERS=1, POST=0, ...) make the policy. When ready it
       prints one JSON line on stderr:
       {"msg": "listening", "listen": ["tcp://127.0.0.1:2375", "unix:///run/x.sock"],
        "metrics": "http://127.0.0.1:9102", "socket": "/var/run/docker.sock", ...}
check: `check -f policy.yaml METHOD PATH [--body FILE] [--container-name N --container-label k=v]
       [--engine docker|podman|unknown]`
       prints the decision; exit 0 allow, 1 deny, 2 error.
suggest: `suggest AUDIT.jsonl|- [--policy CURRENT.yaml]` prints the policy that allows exactly
       what an audit log shows (suggest_command.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from docker_socket_operator.proxy.limits import Limits

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_LISTEN = "0.0.0.0:2375"
DEFAULT_LISTEN_IPV6 = "[::]:2375"
DEFAULT_METRICS = "0.0.0.0:9102"


# -- proxy ------------------------------------------------------------------------------------


def register_proxy(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("proxy", help="run the filtering Docker API proxy")
    p.add_argument(
        "--listen",
        action="append",
        metavar="ADDR",
        help=f"HOST:PORT or unix:/path; repeatable (default {DEFAULT_LISTEN}; without --policy"
        f" also {DEFAULT_LISTEN_IPV6} unless DISABLE_IPV6=1, as Tecnativa's image)",
    )
    p.add_argument(
        "--socket",
        default=None,
        help=f"daemon API socket (default $SOCKET_PATH or {DEFAULT_SOCKET})",
    )
    p.add_argument("--policy", help="DockerSocketPolicy YAML (reloaded when it changes)")
    p.add_argument(
        "--metrics-listen",
        default=DEFAULT_METRICS,
        metavar="ADDR",
        help=f"/healthz /readyz /metrics listener, or 'none' (default {DEFAULT_METRICS})",
    )
    p.add_argument(
        "--audit-log", default="-", metavar="FILE", help="audit JSON lines ('-' = stderr)"
    )
    add_limit_arguments(p)
    p.set_defaults(func=run_proxy)


def add_limit_arguments(p: argparse.ArgumentParser) -> None:
    from docker_socket_operator.proxy.limits import Limits

    d = Limits()
    g = p.add_argument_group("timeouts and connection caps (streams are exempt once started)")
    flags: list[tuple[str, type, str]] = [
        ("head_timeout", float, "a request head must arrive within SECONDS, else 408"),
        ("idle_timeout", float, "close a kept-alive connection idle for SECONDS"),
        (
            "body_timeout",
            float,
            "a checked body must arrive, a streamed one may pause, within SECONDS, else 408;"
            " a client that leaves its answers unread that long is closed",
        ),
        ("max_connections", int, "open client connections at most, else 503"),
        (
            "max_connections_per_client",
            int,
            "open connections per client IP at most, else 503 (0 = no cap)",
        ),
    ]
    for attr, kind, text in flags:
        default = getattr(d, attr)
        g.add_argument(
            "--" + attr.replace("_", "-"),
            type=kind,
            default=default,
            metavar="SECONDS" if kind is float else "N",
            help=f"{text} (default {default:g})",
        )


def _split_host_port(addr: str) -> tuple[str, int]:
    addr = addr.removeprefix("tcp://")
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {addr!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _tcp_url(sock: socket.socket, scheme: str) -> str:
    name = sock.getsockname()
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{scheme}://{host}:{name[1]}"


async def _serve_proxy(args: argparse.Namespace, socket_path: str) -> int:
    from docker_socket_operator.proxy import build as proxy_build
    from docker_socket_operator.proxy.admin import AdminServer
    from docker_socket_operator.proxy.audit import AuditLog, log_event
    from docker_socket_operator.proxy.metrics import Metrics
    from docker_socket_operator.proxy.reload import (
        PolicyHolder,
        PolicyWatcher,
        load_from_env,
        load_from_file,
    )
    from docker_socket_operator.proxy.server import ProxyServer
    from docker_socket_operator.proxy.upstream import UpstreamPool

    metrics = Metrics()
    limits = _limits(args)
    try:
        if args.policy:
            policy, digest = load_from_file(args.policy)
            source = args.policy
        else:
            policy, digest = load_from_env(os.environ)
            source = "tecnativa-env"
    except Exception as e:
        log_event("policy invalid", source=args.policy or "environment", error=str(e))
        return 2
    if not args.policy:
        _log_environment(os.environ)
    holder = PolicyHolder(policy, source, digest, metrics)
    pool = UpstreamPool(socket_path)
    engine = await pool.detect_engine()  # asked again after the daemon was unreachable
    audit = AuditLog(metrics, args.audit_log)
    proxy = ProxyServer(pool, holder, audit, metrics, limits)

    servers: list[asyncio.Server] = []
    bound: list[str] = []
    listen = args.listen or default_listen(os.environ, env_mode=not args.policy)
    for addr in listen:
        if addr.startswith("unix:"):
            path = addr.removeprefix("unix:").removeprefix("//")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            srv = await proxy.listen_unix(path)
            bound.append(f"unix://{path}")
        else:
            host, port = _split_host_port(addr)
            try:
                srv = await proxy.listen_tcp(host, port)
            except OSError as e:
                if args.listen or addr != DEFAULT_LISTEN_IPV6:
                    raise
                # As Tecnativa's DISABLE_IPV6 exists for: a host without IPv6.
                log_event("ipv6 listen skipped", listen=addr, error=str(e))
                continue
            bound += [_tcp_url(s, "tcp") for s in srv.sockets]
        servers.append(srv)
    metrics_url = None
    if args.metrics_listen not in ("", "none", "off"):
        host, port = _split_host_port(args.metrics_listen)
        admin = AdminServer(pool, metrics)
        srv = await asyncio.start_server(admin.handle, host, port, reuse_address=True)
        servers.append(srv)
        metrics_url = _tcp_url(srv.sockets[0], "http")

    tasks: list[asyncio.Task[None]] = []
    if args.policy:
        tasks.append(asyncio.create_task(PolicyWatcher(args.policy, holder).run()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log_event(
        "listening",
        listen=bound,
        metrics=metrics_url,
        socket=socket_path,
        engine=engine,
        policy=source,
        policy_hash=digest,
        audit=policy.audit,
        limits=dataclasses.asdict(limits),
        build=proxy_build(),
    )
    # What exists now (modules, the compiled policy) lives as long as the process: frozen out
    # of the cycle collector's walks, and collections made rarer (a request leaves few cycles;
    # refcounting frees the rest): a few per cent of a ping's CPU time (bench/README.md).
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    await stop.wait()
    log_event("stopping")
    for srv in servers:
        srv.close()
    for task in tasks:
        task.cancel()
    proxy.close()
    pool.close()
    audit.flush()
    return 0


def default_listen(env: Mapping[str, str], *, env_mode: bool) -> list[str]:
    """Where the proxy listens without --listen. With the Tecnativa variables (no --policy),
    as Tecnativa's image: IPv4 and IPv6 (`[::]:2375 v4v6`) unless DISABLE_IPV6 is set."""
    from docker_socket_operator.policy.tecnativa import env_flag

    if env_mode and not env_flag(env, "DISABLE_IPV6"):
        return [DEFAULT_LISTEN, DEFAULT_LISTEN_IPV6]
    return [DEFAULT_LISTEN]


def _log_environment(env: Mapping[str, str]) -> None:
    """Say which Tecnativa variables are on, and every variable read otherwise than a person
    switching from Tecnativa may expect (policy/tecnativa.py env_warnings)."""
    from docker_socket_operator.policy.tecnativa import env_warnings, flags_on
    from docker_socket_operator.proxy.audit import log_event

    log_event("policy from environment", on=flags_on(env))
    for warning in env_warnings(env):
        log_event("environment variable", warning=warning)


def _limits(args: argparse.Namespace) -> Limits:
    from docker_socket_operator.proxy.limits import Limits

    return Limits(
        head_timeout=args.head_timeout,
        idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        max_connections=_fit_descriptors(args.max_connections),
        max_connections_per_client=args.max_connections_per_client,
    )


def _fit_descriptors(max_connections: int) -> int:
    """Raise the soft descriptor limit to the hard one (as Go programs do) and keep the
    connection cap below what it allows: each client connection may hold a daemon connection
    too, and a process out of descriptors can accept no one, not even to say 503."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    except (OSError, ValueError):
        return max_connections
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, (soft - 64) // 2))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    result: int = uvloop.run(coro)
    return result


def run_proxy(args: argparse.Namespace) -> int:
    socket_path = args.socket or os.environ.get("SOCKET_PATH") or DEFAULT_SOCKET
    try:
        for addr in [*(args.listen or []), args.metrics_listen]:
            if addr and not addr.startswith("unix:") and addr not in ("none", "off"):
                _split_host_port(addr)
        _limits(args).check()
    except ValueError as e:
        print(json.dumps({"msg": "bad arguments", "error": str(e)}), file=sys.stderr)
        return 2
    return _run(_serve_proxy(args, socket_path))


# -- check ------------------------------------------------------------------------------------


def register_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="decide one request against a policy file, offline")
    p.add_argument("-f", "--policy", required=True, help="DockerSocketPolicy YAML")
    p.add_argument("method", help="GET, POST, ...")
    p.add_argument("path", help="request target, e.g. /v1.41/containers/web/restart?t=5")
    p.add_argument("--body", help="file with the JSON request body ('-' = stdin)")
    p.add_argument("--container-name", help="the target container's name")
    p.add_argument("--container-id", help="the target container's full ID")
    p.add_argument("--container-image", default="", help="the target container's image")
    p.add_argument(
        "--container-label", action="append", default=[], metavar="K=V", help="a label; repeatable"
    )
    p.add_argument(
        "--engine",
        choices=["docker", "podman", "unknown"],
        default="unknown",
        help="the daemon whose decoding applies (default unknown: the strictest common checks)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from docker_socket_operator.catalogue.operations import link_parent
    from docker_socket_operator.policy.compile import load_policy_file
    from docker_socket_operator.policy.decide import decide
    from docker_socket_operator.policy.types import BadBody, ContainerFacts
    from docker_socket_operator.proxy.facts import operation_name, request_facts
    from docker_socket_operator.proxy.http1 import HttpError

    method = args.method.upper()
    try:
        policy = load_policy_file(args.policy)
        raw: bytes | None = None
        if args.body:
            raw = sys.stdin.buffer.read() if args.body == "-" else open(args.body, "rb").read()  # noqa: SIM115
        facts = request_facts(method, args.path, raw, engine=args.engine)
        labels = dict(_label_pair(x) for x in args.container_label)
    except HttpError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot read {e.filename or args.body}: {e.strerror or e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    op = facts.op
    if op is not None and policy.needs_container(op):
        ref = link_parent(op, facts.params, facts.query) or facts.params.get("id", "")
        container = ContainerFacts(
            id=args.container_id or ref,
            name=(args.container_name or ref).lstrip("/"),
            labels=labels,
            image=args.container_image,
        )
        facts = dataclasses.replace(facts, container=container)
    try:
        decision = decide(policy, facts)
    except BadBody as e:
        print(f"error: invalid request body: {e}", file=sys.stderr)
        return 2
    verdict = "would-deny" if decision.would_deny else "allow" if decision.allow else "deny"
    operation = operation_name(facts)
    if args.json:
        print(
            json.dumps(
                {
                    "decision": verdict,
                    "operation": operation,
                    "rule": decision.rule,
                    "reason": decision.reason,
                }
            )
        )
    else:
        print(
            f"decision: {verdict}\noperation: {operation}\nrule: {decision.rule}\nreason: {decision.reason}"
        )
    return 0 if decision.allow else 1


def _label_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"label {text!r} is not KEY=VALUE")
    return key, value


# -- entry point ------------------------------------------------------------------------------

# Extension point: one register function per subcommand.
REGISTRARS: list[Registrar] = [register_proxy, register_check]


def register_operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """operator, render, crd: imported lazily so the proxy never loads kopf."""
    from docker_socket_operator.controller.commands import add_commands

    add_commands(sub)


REGISTRARS.append(register_operator_commands)


def register_suggest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from docker_socket_operator.suggest_command import register_suggest as register

    register(sub)


REGISTRARS.append(register_suggest)


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line on stderr (exit 2); the usage itself is behind --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="docker-socket-operator",
        description="A filtering Docker Engine API proxy and the Kubernetes operator that deploys it.",
    )
    from docker_socket_operator import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # `render ... | head`: the reader left; no traceback, and none again at exit's flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
