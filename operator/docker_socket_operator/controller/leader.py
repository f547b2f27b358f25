"""Leader election with a coordination.k8s.io Lease, as client-go does it.

Why a Lease and not kopf peering: kopf's peering pauses lower-priority operators but lets
equal-priority replicas all run (it only warns), so two replicas of one Deployment would both
reconcile. With a Lease exactly one replica runs kopf; the others wait for it to expire.
Expiry is judged by how long the record stayed unchanged as seen locally (not by comparing
the holder's clock with ours), so clock skew between nodes does not matter.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

from docker_socket_operator.controller.kube import LEASE, ApiError, KubeClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimings:
    duration: float = 15.0  # a holder silent this long is gone
    renew_every: float = 5.0
    renew_deadline: float = 10.0  # a leader that could not renew for this long steps down
    retry_every: float = 2.0


def _micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        timings: LeaseTimings | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.t = timings or LeaseTimings()
        self.is_leader = False
        self.last_renewal = 0.0
        self._observed: tuple[Any, Any] | None = None
        self._observed_at = 0.0

    @property
    def _path(self) -> str:
        return LEASE.path(self.namespace, self.name)

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.t.duration),
            "renewTime": now,
        }
        if previous and previous.get("holderIdentity") == self.identity:
            spec["acquireTime"] = previous.get("acquireTime", now)
            spec["leaseTransitions"] = previous.get("leaseTransitions", 0)
        else:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int((previous or {}).get("leaseTransitions", 0)) + (
                1 if previous else 0
            )
        return spec

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        lease = await self.client.get(self._path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(None),
            }
            try:
                await self.client.request("POST", LEASE.path(self.namespace), body=body)
            except ApiError as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        expired = time.monotonic() - self._observed_at > float(
            spec.get("leaseDurationSeconds") or self.t.duration
        )
        if holder and holder != self.identity and not expired:
            return False
        lease["spec"] = self._spec(spec)
        try:
            # PUT with the resourceVersion we read: two candidates cannot both win.
            await self.client.request("PUT", self._path, body=lease)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        log.info("waiting for leadership of lease %s/%s", self.namespace, self.name)
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except (TimeoutError, ApiError, OSError) as exc:
                log.warning("lease acquisition failed: %s", exc)
            await asyncio.sleep(self.t.retry_every)
        self.is_leader = True
        self.last_renewal = time.monotonic()
        log.info("became leader (%s)", self.identity)

    async def keep_renewing(self) -> None:
        """Return when leadership is lost (renewals failing past the deadline, or taken)."""
        while True:
            await asyncio.sleep(self.t.renew_every)
            try:
                if await self.try_acquire_or_renew():
                    self.last_renewal = time.monotonic()
                    continue
                log.error("lease %s taken by another replica", self.name)
                break
            except (TimeoutError, ApiError, OSError) as exc:
                log.warning("lease renewal failed: %s", exc)
            if time.monotonic() - self.last_renewal > self.t.renew_deadline:
                log.error("could not renew lease %s in time", self.name)
                break
        self.is_leader = False

    async def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.client.get(self._path)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.client.request("PUT", self._path, body=lease)
        except (TimeoutError, ApiError, OSError) as exc:
            log.warning("could not release lease %s: %s", self.name, exc)
