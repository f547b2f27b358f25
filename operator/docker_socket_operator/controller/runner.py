"""The `operator` command: log in, win the Lease, run kopf until told to stop.

Health: /healthz answers 200 while the process works (a standby replica included, which runs
no kopf and so has no kopf liveness endpoint); /readyz answers 200 once it is a ready leader
or a standby. Logs are JSON lines (kopf's formatter) on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf
from aiohttp import web

from docker_socket_operator.controller.handlers import register_handlers
from docker_socket_operator.controller.kube import KubeClient, credentials_from_kopf
from docker_socket_operator.controller.leader import LeaseElector
from docker_socket_operator.controller.memory import Trimmer, libc_trim
from docker_socket_operator.controller.reconcile import OperatorConfig, Reconciler
from docker_socket_operator.controller.render.common import MANAGER
from docker_socket_operator.controller.term import Term

log = logging.getLogger(__name__)

PREFIX = "dockersocket.io"
KOPF_CONNECTIONS = 32  # kopf's connections to the API server: ~6 watch streams and requests


@dataclass(frozen=True)
class RunOptions:
    config: OperatorConfig
    health_listen: tuple[str, int] | None = ("0.0.0.0", 8080)
    leader_election: bool = True
    lease_name: str | None = None  # None: derived from the controller name
    lease_namespace: str = "kube-system"  # shared by every install of one controller name
    log_json: bool = True
    verbose: bool = False


def login(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """The same credentials kopf would find: the pod's service account, else KUBECONFIG."""
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account token and no KUBECONFIG")
    return info


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Our group's prefix, not kopf's: users see only dockersocket.io keys on their policies.
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Only problems become Kubernetes Events; routine success is in the logs.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = MANAGER
    settings.posting.event_name_prefix = "dso-event-"
    settings.networking.error_backoffs = [1, 2, 5, 10]
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300
    return settings


def bounded_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """The session kopf would make from `info`, with a bounded connection pool: kopf's own has
    none, and a cold start's burst of patches left ~200 TLS connections open, each with its
    buffers (a quarter of the operator's memory at 200 policies). The bound leaves room for
    kopf's watch streams (one per watched kind), which hold a connection each."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session,
    )


class Health:
    def __init__(self) -> None:
        self.ready = False
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.json_response({"ready": self.ready}, status=200 if self.ready else 503)


async def _run_kopf(
    opts: RunOptions,
    reconciler: Reconciler,
    stop: asyncio.Event,
    ready: asyncio.Event,
    trimmer: Trimmer,
) -> None:
    registry = kopf.OperatorRegistry()
    register_handlers(registry, reconciler, trimmer.touch)

    @kopf.on.login(registry=registry)
    async def _login(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession:
        # Read afresh each time kopf asks (after a 401): service account tokens rotate.
        return bounded_session(login(settings))

    await kopf.operator(
        registry=registry,
        settings=operator_settings(),
        standalone=True,  # the Lease decides who runs; no kopf peering objects needed
        namespaces=[opts.config.namespace],  # children; the cluster-scoped policies: everywhere
        stop_flag=stop,
        ready_flag=ready,
    )


def lease_name_for(controller_name: str) -> str:
    """One Lease per controller name: `dockersocket.io/operator` → `dso-dockersocket.io-operator`."""
    return "dso-" + controller_name.replace("/", "-").lower()[:200]


async def run_operator(opts: RunOptions) -> int:
    settings = operator_settings()
    info = login(settings)  # fail fast, before serving health, when there are no credentials
    health = Health()
    if opts.health_listen:
        await health.start(*opts.health_listen)
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    _on_signals(loop, shutdown)
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    trimmer = Trimmer(libc_trim())
    trimming = asyncio.create_task(trimmer.run())
    client = KubeClient(
        credentials_from_kopf(info), relogin=lambda: credentials_from_kopf(login(settings))
    )
    async with client:
        lease_name = opts.lease_name or lease_name_for(opts.config.controller_name)
        elector = LeaseElector(client, opts.lease_namespace, lease_name, identity)
        health.ready = True  # a standby is a healthy, ready replica
        try:
            while not shutdown.is_set():
                if opts.leader_election and not await _until(elector.acquire(), shutdown):
                    break
                health.ready = False
                # Everything this term does goes through its own client and reconciler, and
                # stops with it: a replica that lost the Lease writes nothing more.
                term = Term()
                term_client = KubeClient(client.creds, relogin=client.relogin, guard=term.check)
                reconciler = Reconciler(term_client, opts.config, term)
                stop, ready = asyncio.Event(), asyncio.Event()
                kopf_task = asyncio.create_task(_run_kopf(opts, reconciler, stop, ready, trimmer))
                ready_task = asyncio.create_task(_mark_ready(ready, health))
                waits: set[asyncio.Future[Any]] = {
                    kopf_task,
                    asyncio.ensure_future(shutdown.wait()),
                }
                if opts.leader_election:
                    waits.add(asyncio.ensure_future(elector.keep_renewing()))
                done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                await term.end()  # first: no write may follow the end of leadership
                stop.set()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await kopf_task
                await term_client.close()
                for task in (*pending, ready_task):
                    if task is not kopf_task:
                        task.cancel()
                # kopf takes SIGINT/SIGTERM over while it runs; take them back.
                _on_signals(loop, shutdown)
                if kopf_task in done:
                    # kopf ended by itself: a signal it caught, or a fatal error.
                    if kopf_task.exception() is not None:
                        log.error("kopf stopped: %r", kopf_task.exception())
                        return 1
                    break
                if not opts.leader_election:
                    break
                if not shutdown.is_set():
                    log.warning("lost leadership; back to standby")
                health.ready = True
        finally:
            trimming.cancel()
            await elector.release()
            await health.stop()
    return 0


def _on_signals(loop: asyncio.AbstractEventLoop, shutdown: asyncio.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)


async def _mark_ready(ready: asyncio.Event, health: Health) -> None:
    await ready.wait()
    health.ready = True


async def _until(coro: Any, shutdown: asyncio.Event) -> bool:
    """Run `coro` unless shutdown comes first; True when it finished."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(shutdown.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, stopper):
        if t not in done:
            t.cancel()
    return task in done


def configure_logging(json_logs: bool, verbose: bool) -> None:
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL,
        log_refkey="k8s",
    )
    # kopf logs "Handler succeeded" for every watch event of every child; the reconcile logs
    # what it changes, so only kopf's problems are worth a line.
    if not verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
