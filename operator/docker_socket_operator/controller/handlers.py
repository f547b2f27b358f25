"""kopf handlers: the policy's lifecycle and the drift of its children, all into one reconcile.

No finalizer, timer or daemon: deleting a policy never hangs on a missing operator. When the
operator sees a policy go it deletes the children itself (the garbage collector learns a new
CRD's kind only at its next discovery resync, ~30 s after the CRD is installed); the
ownerReferences stay so the garbage collector still cleans up while the operator is away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf

from docker_socket_operator.api.models import GROUP, PLURAL, VERSION
from docker_socket_operator.controller.apply import owner_policy
from docker_socket_operator.controller.kube import CHILD_KINDS
from docker_socket_operator.controller.reconcile import ReconcileFailed, Reconciler
from docker_socket_operator.controller.render.common import MANAGED_BY_LABEL, MANAGER

log = logging.getLogger(__name__)


def _nothing() -> None:
    pass


def register_handlers(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    on_work: Callable[[], None] = _nothing,
) -> None:
    """`on_work` is called after each handler ran (the memory trimmer counts work with it)."""
    delay = reconciler.config.retry_delay

    async def reconcile_policy(body: kopf.Body, **_: Any) -> None:
        try:
            await reconciler.reconcile(dict(body), prune=True)
        except ReconcileFailed as exc:
            raise kopf.TemporaryError(str(exc), delay=delay) from exc
        finally:
            on_work()

    for on in (kopf.on.create, kopf.on.update, kopf.on.resume):
        on(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile_policy)

    async def policy_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        meta = body.get("metadata") or {}
        if type == "DELETED" or meta.get("deletionTimestamp"):
            try:
                await reconciler.delete_children(meta["name"], meta.get("uid"))
            except Exception as exc:  # the garbage collector still has the ownerReferences
                log.warning("deleting the children of %s failed (%s)", meta.get("name"), exc)
            finally:
                on_work()

    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="deletion")(policy_event)

    async def child_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
        # A child was edited, deleted or its status moved (DaemonSet rollout): bring its
        # policy back in line. The reconcile compares first, so our own writes end here.
        child = dict(body)
        name = owner_policy(child)
        if name is None:
            return
        try:
            if type == "DELETED":
                await reconciler.reconcile_named(name)
            else:
                await reconciler.child_changed(child, name)
        except Exception as exc:  # kopf never retries event handlers: we do
            log.warning("drift repair of %s failed (%s); retrying in %ss", name, exc, delay)
            reconciler.retry_later(name)
        finally:
            on_work()

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
