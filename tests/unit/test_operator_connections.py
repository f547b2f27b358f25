"""The operator's connections to the API server are bounded: a burst of work waits for a free
connection instead of opening one per request (each open TLS connection keeps its buffers)."""

from __future__ import annotations

import asyncio

import kopf
from aiohttp import web

from docker_socket_operator.controller.kube import CONNECTIONS, Credentials, KubeClient
from docker_socket_operator.controller.runner import KOPF_CONNECTIONS, bounded_session


async def _burst(requests: int) -> tuple[set[int], int]:
    peers: set[int] = set()
    inflight = 0
    most = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal inflight, most
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peers.add(peer[1] if peer else 0)
        inflight += 1
        most = max(most, inflight)
        await asyncio.sleep(0)  # let the other requests of the burst arrive meanwhile
        inflight -= 1
        return web.json_response({"kind": "ConfigMap"})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x/configmaps/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        creds = Credentials(server=f"http://127.0.0.1:{port}", headers={}, ssl_context=False)
        async with KubeClient(creds) as client:
            answers = await asyncio.gather(
                *(client.get(f"/api/v1/namespaces/x/configmaps/c{i}") for i in range(requests))
            )
        assert all(a == {"kind": "ConfigMap"} for a in answers)
    finally:
        await runner.cleanup()
    return peers, most


def test_a_burst_of_requests_shares_a_bounded_set_of_connections() -> None:
    peers, most = asyncio.run(_burst(5 * CONNECTIONS))
    assert 1 < len(peers) <= CONNECTIONS
    assert most <= CONNECTIONS


def test_kopfs_session_has_a_bounded_pool_and_the_same_credentials() -> None:
    async def made() -> tuple[int, str | None, str]:
        info = kopf.ConnectionInfo(
            server="https://127.0.0.1:6443", token="secret-token", default_namespace="ns"
        )
        found = bounded_session(info)
        session = found.aiohttp_session
        try:
            connector = session.connector
            assert connector is not None
            return connector.limit, session.headers.get("Authorization"), found.server
        finally:
            await session.close()

    limit, authorization, server = asyncio.run(made())
    assert limit == KOPF_CONNECTIONS
    assert authorization == "Bearer secret-token"
    assert server == "https://127.0.0.1:6443"
