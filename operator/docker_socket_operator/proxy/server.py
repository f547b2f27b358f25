"""One client connection: a loop of requests, each parsed, decided, then forwarded or refused.

Per request: strict head parse → canonical target → catalogue operation → body (buffered and
decoded only when the policy needs it) → target container resolved by an upstream inspect when
the policy needs it (and the path rewritten to its full ID, so the daemon acts on exactly the
container that was decided on) → decide → 403, or forward and relay/filter the response.

Nothing is forwarded that was not parsed as part of an allowed request: the upstream request
head is rebuilt from parsed fields, bodies are forwarded on the framing that was parsed, and a
connection whose next bytes cannot be located (an unread body after a deny) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from docker_socket_operator.catalogue.operations import link_parent, match_operation
from docker_socket_operator.catalogue.paths import parse_target
from docker_socket_operator.catalogue.types import BadTarget, Operation
from docker_socket_operator.policy.asks import audit_facts
from docker_socket_operator.policy.body import decode_docker_json
from docker_socket_operator.policy.compile import CompiledPolicy
from docker_socket_operator.policy.decide import NOT_VISIBLE, decide
from docker_socket_operator.policy.filters import (
    ANSWER_FILTERS,
    WITHHELD,
    EventVisibility,
    container_facts_from_inspect,
    create_container_refs,
    create_volume_names,
    error_names_hidden,
    volume_visible,
)
from docker_socket_operator.policy.types import BadBody, ContainerFacts, Decision, RequestFacts
from docker_socket_operator.proxy.audit import AuditLog, AuditRecord, log_event
from docker_socket_operator.proxy.bodies import (
    discard_request_body,
    pipe_hijacked,
    read_request_body,
    relay_events_filtered,
    relay_response,
    stream_request_body,
)
from docker_socket_operator.proxy.http1 import (
    Framing,
    HttpError,
    RequestHead,
    ResponseHead,
    UpstreamProtocolError,
    is_form_body,
    json_error,
    parse_query,
    parse_request_head,
)
from docker_socket_operator.proxy.limits import ConnectionCounter, Limits
from docker_socket_operator.proxy.messages import (
    decode_json,
    json_bytes,
    read_request_head,
    rewrite_path,
    upstream_request_head,
)
from docker_socket_operator.proxy.metrics import Metrics
from docker_socket_operator.proxy.reload import PolicyHolder
from docker_socket_operator.proxy.upstream import (
    UpstreamConnection,
    UpstreamPool,
    UpstreamUnavailable,
)
from docker_socket_operator.proxy.watchdog import HeadTimeout, HeadWatch

DISCARD_LIMIT = 64 * 1024  # an unread body up to this size is skipped after a deny
FILTER_LIMIT = 64 << 20  # largest list/inspect answer the proxy rewrites
CLIENT_WRITE_HIGH = 1 << 20
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Resolved = ContainerFacts | tuple[ResponseHead, bytes]


class ProxyServer:
    def __init__(
        self,
        pool: UpstreamPool,
        holder: PolicyHolder,
        audit: AuditLog,
        metrics: Metrics,
        limits: Limits | None = None,
    ) -> None:
        self.pool = pool
        self.holder = holder
        self.audit = audit
        self.metrics = metrics
        self.limits = limits or Limits()
        self.connections = ConnectionCounter(self.limits)
        self.watch = HeadWatch(self.limits.head_timeout, self.limits.tick)

    async def handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        metrics = self.metrics
        limits = self.limits
        transport = writer.transport
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else None
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        refused = self.connections.admit(ip)
        if refused is not None:
            # Answered without reading: the caps exist so that a flood costs nothing more.
            metrics.connections_refused += 1
            rec = AuditRecord(client, "", "", time.perf_counter(), "connection", "reject")
            self._refuse(writer, rec, HttpError(503, refused))
            writer.close()
            return
        metrics.open_connections += 1
        metrics.connections_total += 1
        transport.set_write_buffer_limits(high=CLIENT_WRITE_HIGH)
        try:
            first = True
            while True:
                started = time.perf_counter()
                try:
                    head = await self._next_head(reader, first)
                    if head is None:
                        break
                    req = parse_request_head(head)
                except HttpError as e:
                    rec = AuditRecord(client, "", "", started, "malformed", "reject", "", e.message)
                    self._refuse(writer, rec, e)
                    break
                # Once a request is being served no timer runs on the client: streams (events,
                # logs follow, attach, exec) are exempt once started.
                if not await self.handle_request(req, reader, writer, client, time.perf_counter()):
                    break
                first = False
            async with asyncio.timeout(limits.body_timeout):
                await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, UpstreamProtocolError):
            pass
        except TimeoutError:
            pass  # a client that does not read its last answer
        except asyncio.CancelledError:
            pass  # shutdown: the listener is closing, nothing awaits this handler
        finally:
            metrics.open_connections -= 1
            self.connections.release(ip)
            with contextlib.suppress(Exception):
                writer.close()

    async def _next_head(self, reader: asyncio.StreamReader, first: bool) -> bytes | None:
        """The next request head: a connection's first within the head timeout of its start;
        a later one within the idle timeout, and then its head within the head timeout of its
        first line. None: the client closed, or stayed idle."""
        limits = self.limits
        watch = self.watch
        watch.arm(reader, limits.head_timeout if first else limits.idle_timeout)
        try:
            return await read_request_head(reader, None if first else watch)
        except HeadTimeout as e:
            if not first and not e.begun:
                return None  # idle between requests: close quietly, as HAProxy does
            self.metrics.timeouts += 1
            raise HttpError(
                408, f"request head not received within {limits.head_timeout:g} seconds"
            ) from None
        finally:
            watch.disarm(reader)

    async def _discard(self, reader: asyncio.StreamReader, req: RequestHead) -> bool:
        return await discard_request_body(reader, req, DISCARD_LIMIT, self.limits.body_timeout)

    def _refuse(self, writer: asyncio.StreamWriter, rec: AuditRecord, e: HttpError) -> None:
        rec.status = e.status
        rec.reason = e.message
        self.audit.finish(rec, self.holder.policy.audit)
        writer.write(json_error(e.status, e.message, close=e.close))

    async def handle_request(
        self,
        req: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str,
        started: float,
    ) -> bool:
        """Serve one request; True when the connection can carry the next one."""
        policy = self.holder.policy
        rec = AuditRecord(client, req.method, req.target[:2048], started)
        try:
            return await self._serve(policy, req, reader, writer, rec)
        except HttpError as e:
            rec.decision = "reject"
            self._refuse(writer, rec, e)
            return False
        except UpstreamUnavailable as e:
            self.metrics.upstream_errors += 1
            self._fail(writer, rec, 502, str(e))
            return False
        except UpstreamProtocolError as e:
            self.metrics.upstream_errors += 1
            self._fail(writer, rec, 502, f"bad response from the daemon: {e}")
            return False
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            raise
        except Exception as e:  # a bug must not leave the client hanging, nor let anything through
            log_event("internal error", error=repr(e), method=req.method, path=rec.path)
            self._fail(writer, rec, 500, "internal proxy error")
            return False

    def _fail(
        self, writer: asyncio.StreamWriter, rec: AuditRecord, status: int, message: str
    ) -> None:
        """An error after the decision: answered only if nothing was sent to the client yet."""
        if not rec.finished:
            rec.decision = "error"
            self._refuse(writer, rec, HttpError(status, message))

    async def _serve(
        self,
        policy: CompiledPolicy,
        req: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: AuditRecord,
    ) -> bool:
        try:
            target = parse_target(req.target)
        except BadTarget as e:
            raise HttpError(400, f"bad request target: {e}") from None
        if req.has_body and is_form_body(req.content_type):
            raise HttpError(400, "form-encoded bodies are not accepted")
        query = parse_query(target.query, libpod=target.libpod)
        matched = match_operation(req.method, target.api_path)
        op = matched.op if matched is not None else None
        params: Mapping[str, str] = matched.params if matched is not None else {}
        rec.operation = op.name if op is not None else ("libpod" if target.libpod else "unknown")
        if req.upgrade_websocket and (op is None or op.name != "containers.attach-websocket"):
            raise HttpError(
                400, "a websocket upgrade is only accepted on containers/{id}/attach/ws"
            )

        body_raw: bytes | None = None
        body: Any = None
        if op is not None and req.has_body and policy.needs_body(op):
            if req.expect_continue:
                writer.write(CONTINUE)
            body_raw = await read_request_body(
                reader, req, policy.max_body, self.limits.body_timeout
            )
            if body_raw.strip():
                try:
                    body = decode_docker_json(body_raw)
                except BadBody as e:
                    raise HttpError(400, f"invalid JSON body: {e}") from None

        container: ContainerFacts | None = None
        api_path: str | None = None
        missing_hidden = False
        if op is not None and policy.needs_container(op):
            parent = link_parent(op, params, query)
            resolved = await self._resolve_container(op, parent or params.get("id", ""))
            if isinstance(resolved, tuple):
                if resolved[0].status != 404 or policy.visibility is None:
                    return await self._relay_daemon_answer(
                        req, reader, writer, rec, policy, resolved, body_raw
                    )
                # Under visibility a missing container is answered like a hidden one: the
                # daemon's 404 would tell a client which names exist outside its view.
                missing_hidden = True
            else:
                container = resolved
                # dockerd finds a link by its name only: a link removal goes on by name.
                if op.target == "container" and parent is None:
                    api_path = rewrite_path(op.template, params, container.id)

        facts = RequestFacts(
            method=req.method,
            api_path=target.api_path,
            op=op,
            params=params,
            query=query,
            body=body,
            container=container,
            libpod=target.libpod,
            engine=self.pool.engine if body is None else await self.pool.current_engine(),
        )
        decision = decide(policy, facts)
        if missing_hidden and decision.allow:
            decision = Decision(False, "visibility", NOT_VISIBLE)
        if decision.allow and op is not None and policy.visibility is not None:
            hidden = await self._hidden_data(policy, op, params, body)
            if hidden is not None:
                return await self._relay_daemon_answer(
                    req, reader, writer, rec, policy, hidden, body_raw
                )
        rec.rule = decision.rule
        rec.reason = decision.reason
        rec.facts = audit_facts(facts)
        if not decision.allow:
            rec.decision = "deny"
            rec.status = 403
            keep = req.keep_alive and (body_raw is not None or await self._discard(reader, req))
            self.audit.finish(rec, policy.audit)
            writer.write(
                json_error(
                    403, f"blocked by policy: {decision.reason or decision.rule}", close=not keep
                )
            )
            return keep
        rec.decision = "would-deny" if decision.would_deny else "allow"
        hijack = op is not None and op.hijack
        head = upstream_request_head(
            req, target, api_path, None if body_raw is None else len(body_raw), hijack
        )
        own_id = container.id if container is not None else ""
        return await self._forward(policy, req, op, reader, writer, rec, head, body_raw, own_id)

    async def _resolve_container(self, op: Operation, ref: str) -> Resolved:
        """The container a request is about, by inspecting it upstream (an exec ID is mapped
        to its container first); the daemon's own non-200 answer is returned as is. A ref
        may hold '/' (a legacy link name), as dockerd's `{name:.*}` routes allow."""
        if op.target == "exec":
            resp, raw = await self.pool.simple_get(f"/exec/{quote(ref, safe='/')}/json")
            if resp.status != 200:
                return resp, raw
            ref = str(self._json(raw).get("ContainerID", ""))
        resp, raw = await self.pool.simple_get(f"/containers/{quote(ref, safe='/')}/json")
        if resp.status != 200:
            return resp, raw
        try:
            return container_facts_from_inspect(self._json(raw))
        except BadBody as e:
            raise UpstreamProtocolError(f"unexpected container inspect answer: {e}") from None

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(raw)
        except ValueError:
            raise UpstreamProtocolError("daemon answered an inspect with invalid JSON") from None
        if not isinstance(doc, dict):
            raise UpstreamProtocolError("daemon answered an inspect with a non-object")
        return doc

    async def _containers(self) -> list[Any]:
        """Every container on the daemon, as its list shows them (names, labels, mounts)."""
        resp, raw = await self.pool.simple_get("/containers/json?all=1", FILTER_LIMIT)
        items = decode_json(raw) if resp.status == 200 else None
        if not isinstance(items, list):
            raise UpstreamProtocolError(f"container list failed (status {resp.status})")
        return items

    async def _hidden_data(
        self, policy: CompiledPolicy, op: Operation, params: Mapping[str, str], body: Any
    ) -> HttpError | None:
        """Under visibility a named volume that only hidden containers use does not exist for
        the client: a volume call on it gets the same 404 as a missing volume, and a create
        may not mount it or take its name. Nor may a create reach a hidden container through
        its namespaces, VolumesFrom or Links (when a rule opens those)."""
        if op.target == "volume":
            name = params.get("name", "")
            resp, _ = await self.pool.simple_get(f"/volumes/{quote(name, safe='')}")
            if resp.status == 404 or (
                resp.status == 200 and not volume_visible(policy, name, await self._containers())
            ):
                return HttpError(404, f"get {name}: no such volume", close=False)
            return None
        if op.name == "containers.create":
            for ref in create_container_refs(body):
                found = await self._resolve_container(op, ref)
                if isinstance(found, tuple) or not policy.container_visible(found):
                    return HttpError(403, f"blocked by policy: {NOT_VISIBLE} ({ref!r})")
            names = create_volume_names(body)
        elif op.name == "volumes.create" and isinstance(body, dict):
            names = [n for n in (body.get("name"),) if isinstance(n, str) and n]
        else:
            return None
        containers = await self._containers() if names else []
        for name in names:
            if not volume_visible(policy, name, containers):
                return HttpError(
                    403, f"blocked by policy: volume {name!r} is not visible to this client"
                )
        return None

    def _withheld(self, policy: CompiledPolicy, req: RequestHead, raw: bytes, own_id: str) -> bytes:
        """A daemon error body, or WITHHELD when under visibility it may name a hidden object
        (a name conflict with a hidden container, the users of a volume...)."""
        if policy.visibility is None or not error_names_hidden(raw, req.target, own_id):
            return raw
        return json_bytes({"message": WITHHELD})

    async def _relay_daemon_answer(
        self,
        req: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: AuditRecord,
        policy: CompiledPolicy,
        answer: tuple[ResponseHead, bytes] | HttpError,
        body_raw: bytes | None,
    ) -> bool:
        """A request answered without forwarding it: the daemon's own answer when the target
        container does not exist (or the inspect failed), or the proxy's when the data the
        request touches refuses it (a hidden volume)."""
        if isinstance(answer, HttpError):
            rec.decision, rec.rule = "deny", "visibility"
            rec.status, rec.reason = answer.status, answer.message
        else:
            rec.decision = "unresolved"
            rec.status = answer[0].status
            rec.reason = "target container not found" if rec.status == 404 else "inspect failed"
        keep = req.keep_alive and (body_raw is not None or await self._discard(reader, req))
        self.audit.finish(rec, policy.audit)
        if isinstance(answer, HttpError):
            writer.write(json_error(answer.status, answer.message, close=not keep))
        else:
            resp, raw = answer
            raw = b"" if req.method == "HEAD" else self._withheld(policy, req, raw, "")
            writer.write(resp.rebuilt(len(raw)) + raw)
        return keep

    async def _forward(
        self,
        policy: CompiledPolicy,
        req: RequestHead,
        op: Operation | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: AuditRecord,
        head: bytes,
        body_raw: bytes | None,
        own_id: str = "",
    ) -> bool:
        streamed = body_raw is None and req.has_body
        conn = self.pool.take_idle()
        pooled = conn is not None
        if conn is None:
            conn = await self.pool.connect()
        try:
            try:
                resp = await self._send(conn, req, reader, writer, head, body_raw, streamed)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not pooled or streamed:
                    raise
                # a kept-alive connection the daemon had closed: once more on a fresh one
                conn.close()
                conn = await self.pool.connect()
                resp = await self._send(conn, req, reader, writer, head, body_raw, streamed)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            conn.close()
            raise UpstreamUnavailable(
                f"Docker daemon unavailable at {self.pool.socket_path}: {e}"
            ) from e
        except BaseException:
            conn.close()
            raise
        try:
            return await self._respond(policy, req, op, reader, writer, rec, conn, resp, own_id)
        except BaseException:
            conn.close()
            raise

    async def _send(
        self,
        conn: UpstreamConnection,
        req: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: bytes,
        body_raw: bytes | None,
        streamed: bool,
    ) -> ResponseHead:
        conn.writer.write(head if body_raw is None else head + body_raw)
        if streamed:
            if req.expect_continue:
                writer.write(CONTINUE)
            await stream_request_body(reader, req, conn.writer, self.limits.body_timeout)
        return await conn.read_head(req.method)

    async def _respond(
        self,
        policy: CompiledPolicy,
        req: RequestHead,
        op: Operation | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rec: AuditRecord,
        conn: UpstreamConnection,
        resp: ResponseHead,
        own_id: str = "",
    ) -> bool:
        rec.status = resp.status
        name = op.name if op is not None else ""
        hijack = op is not None and op.hijack
        if resp.status == 101 or (
            hijack and resp.status == 200 and resp.raw_stream and resp.framing is Framing.CLOSE
        ):
            if not hijack:
                raise UpstreamProtocolError("daemon switched protocols on a non-hijack operation")
            self.audit.finish(rec, policy.audit)
            writer.write(resp.raw)
            await pipe_hijacked(reader, writer, conn)
            conn.close()
            return False
        filtered = resp.status == 200 and req.method == "GET"
        answer_filter = ANSWER_FILTERS.get(name) if filtered else None
        if answer_filter is not None and answer_filter.applies(policy):
            doc = decode_json(await conn.read_body(resp, FILTER_LIMIT))
            needs = answer_filter.needs_containers and policy.visibility is not None
            containers = await self._containers() if needs else []
            out = json_bytes(answer_filter.rewrite(policy, doc, containers))
            self.audit.finish(rec, policy.audit)
            writer.write(resp.rebuilt(len(out)) + out)
            clean = True
        elif filtered and name == "system.events" and policy.filters_containers:
            visible = EventVisibility(policy, await self._containers())
            self.audit.finish(rec, policy.audit)
            clean = await relay_events_filtered(conn, resp, writer, visible)
        elif resp.status >= 400 and policy.visibility is not None and req.method != "HEAD":
            out = self._withheld(policy, req, await conn.read_body(resp, FILTER_LIMIT), own_id)
            self.audit.finish(rec, policy.audit)
            writer.write(resp.rebuilt(len(out)) + out)
            clean = True
        else:
            self.audit.finish(rec, policy.audit)
            clean = await relay_response(conn, resp, resp.raw, writer)
        reusable = clean and resp.reusable and req.version == "HTTP/1.1"
        self.pool.release(conn, reusable)
        return req.keep_alive and resp.reusable
