"""A leadership term's background tasks and writes end with it."""

from __future__ import annotations

import asyncio

import pytest

from docker_socket_operator.controller.kube import Credentials, KubeClient
from docker_socket_operator.controller.term import Term, TermEnded


def test_ending_a_term_cancels_its_tasks_and_refuses_new_ones() -> None:
    async def scenario() -> tuple[bool, int, bool]:
        term = Term()
        ran = asyncio.Event()

        async def forever() -> None:
            ran.set()
            await asyncio.sleep(3600)

        task = term.spawn(forever())
        await ran.wait()
        await term.end()
        late = term.spawn(forever())
        return task is not None and task.cancelled(), term.pending, late is None

    cancelled, pending, refused = asyncio.run(scenario())
    assert cancelled and pending == 0 and refused


def test_the_terms_client_refuses_writes_after_the_term() -> None:
    async def scenario() -> None:
        term = Term()
        client = KubeClient(
            Credentials("https://127.0.0.1:1", {}, False), guard=term.check, timeout=1
        )
        await term.end()
        try:
            with pytest.raises(TermEnded):
                await client.merge_patch("/api/v1/namespaces/x/configmaps/y", {})
            assert client.writes == 0
        finally:
            await client.close()

    asyncio.run(scenario())
