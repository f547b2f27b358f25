"""kopf handlers: the policy's lifecycle and the drift of its children, all into one reconcile.

No deletion handler, timer or daemon: kopf adds no finalizer, so deleting a policy never
hangs on a missing operator; ownerReferences let the garbage collector remove the children.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from docker_socket_operator.api.models import GROUP, PLURAL, VERSION
from docker_socket_operator.controller.apply import owner_policy
from docker_socket_operator.controller.kube import CHILD_KINDS
from docker_socket_operator.controller.reconcile import ReconcileFailed, Reconciler
from docker_socket_operator.controller.render.common import MANAGED_BY_LABEL, MANAGER

log = logging.getLogger(__name__)

RETRY_DELAY = 10.0


_pending_retries: dict[str, asyncio.Task[None]] = {}


def _retry_later(reconciler: Reconciler, name: str) -> None:
    """One delayed reconcile per policy at a time; it retries itself until it succeeds."""
    if name in _pending_retries:
        return

    async def retry() -> None:
        await asyncio.sleep(RETRY_DELAY)
        _pending_retries.pop(name, None)
        try:
            await reconciler.reconcile_named(name)
        except Exception as exc:
            log.warning("retry for %s failed (%s)", name, exc)
            _retry_later(reconciler, name)

    _pending_retries[name] = asyncio.create_task(retry())


def register_handlers(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    async def reconcile_policy(body: kopf.Body, **_: Any) -> None:
        try:
            await reconciler.reconcile(dict(body), prune=True)
        except ReconcileFailed as exc:
            raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY) from exc

    for on in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile_policy)

    async def child_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        # A child was edited, deleted or its status moved (DaemonSet rollout): bring its
        # policy back in line. The reconcile compares first, so our own writes end here.
        name = owner_policy(dict(body))
        if name is None:
            return
        try:
            await reconciler.reconcile_named(name)
        except Exception as exc:  # kopf never retries event handlers: we do
            log.warning("drift repair of %s failed (%s); retrying in %ss", name, exc, RETRY_DELAY)
            _retry_later(reconciler, name)

    for kind in CHILD_KINDS:
        group, _, version = kind.api_version.rpartition("/")
        kopf.on.event(
            group or "",
            version,
            kind.plural,
            registry=registry,
            id=f"drift-{kind.plural}",
            labels={MANAGED_BY_LABEL: MANAGER},
        )(child_changed)
