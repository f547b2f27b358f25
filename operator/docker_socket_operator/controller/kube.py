"""A small asyncio Kubernetes API client: GET, LIST, server-side apply, DELETE, status patch.

kopf watches and dispatches; this client does the writes the reconcile needs, with the same
credentials kopf logs in with (service account in a pod, kubeconfig outside).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from docker_socket_operator.api.models import GROUP, PLURAL, VERSION
from docker_socket_operator.controller.render.common import MANAGER

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"
# Requests to the API server at once; more wait for a free connection (an open one keeps its
# TLS buffers: a cold start of 200 policies held ~100 open without a bound).
CONNECTIONS = 16


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


CONFIGMAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
DAEMONSET = Kind("apps/v1", "DaemonSet", "daemonsets")
NETWORKPOLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")
NODE = Kind("v1", "Node", "nodes", namespaced=False)
EVENT = Kind("v1", "Event", "events")
POD = Kind("v1", "Pod", "pods")
POLICY = Kind(f"{GROUP}/{VERSION}", "DockerSocketPolicy", PLURAL, namespaced=False)

CHILD_KINDS = (CONFIGMAP, DAEMONSET, SERVICE, NETWORKPOLICY)
KINDS_BY_NAME = {(k.api_version, k.kind): k for k in (*CHILD_KINDS, LEASE, POLICY, NODE, EVENT)}


def kind_of(obj: dict[str, Any]) -> Kind:
    return KINDS_BY_NAME[(obj["apiVersion"], obj["kind"])]


class ApiError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        self.status = status
        self.body = body
        try:
            self.message = str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            self.message = body
        super().__init__(f"{method} {path}: {status} {self.message}")


@dataclass(frozen=True)
class Credentials:
    server: str
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | bool


def credentials_from_kopf(info: Any) -> Credentials:
    """From a kopf.ConnectionInfo (what kopf's login handlers return)."""
    ctx: ssl.SSLContext | bool = False if info.insecure else info.as_ssl_context()
    return Credentials(
        server=info.server.rstrip("/"), headers=info.as_http_headers(), ssl_context=ctx
    )


class KubeClient:
    def __init__(
        self,
        creds: Credentials,
        *,
        timeout: float = 30.0,
        relogin: Callable[[], Credentials] | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.creds = creds
        # Raises before any write that is no longer allowed (the leadership term ended).
        self._guard = guard
        # Service account tokens rotate: on a 401 the credentials are read again, once.
        self.relogin = relogin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.writes = 0  # counted for tests and logs: steady state must write nothing

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.creds.headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self.creds.ssl_context, limit=CONNECTIONS),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if method != "GET":
            if self._guard is not None:
                self._guard()
            self.writes += 1
        for attempt in (1, 2):
            async with self._http().request(
                method, self.creds.server + path, params=params, data=data, headers=headers
            ) as resp:
                text = await resp.text()
                if resp.status == 401 and attempt == 1 and self.relogin is not None:
                    await self.close()
                    self.creds = self.relogin()
                    continue
                if resp.status >= 400:
                    raise ApiError(resp.status, text, method, path)
                return json.loads(text) if text else None
        raise AssertionError("unreachable")

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def list(
        self, path: str, label_selector: str | None = None, *, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        params = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        result = await self.request("GET", path, params=params or None)
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as the operator's one field manager, taking fields back (force)."""
        meta = obj["metadata"]
        path = kind_of(obj).path(meta.get("namespace"), meta["name"])
        params = {"fieldManager": MANAGER, "force": "true"}
        # JSON is YAML: the apply content type takes it as is.
        result: dict[str, Any] = await self.request(
            "PATCH", path, params=params, body=obj, content_type=APPLY_CONTENT_TYPE
        )
        return result

    async def delete(self, path: str, uid: str | None = None) -> None:
        """Delete (gone already: fine); `uid`: only that incarnation of the object."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", path, body=body)
        except ApiError as exc:
            # 409 with a uid precondition: a newer object of that name, not ours to delete.
            if exc.status != 404 and not (exc.status == 409 and uid):
                raise

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "PATCH", path, params={"fieldManager": MANAGER}, body=patch,
            content_type=MERGE_CONTENT_TYPE,
        )  # fmt: skip
        return result

    async def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", path, params={"fieldManager": MANAGER}, body=obj
        )
        return result
