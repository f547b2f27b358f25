"""One client connection: a loop of requests, each parsed, decided, then forwarded or refused.

Per request: strict head parse → its facts (proxy/facts.py: target, query, operation, and the
body, read and decoded only when the policy needs it) → target container resolved by an
upstream inspect when the policy needs it (and the path rewritten to its full ID, so the
daemon acts on exactly the container that was decided on) → decide → 403, or forward and
relay/filter the response. Every request takes this one path; an Exchange carries it, and its
audit record is finished in one place (`_finish`), as its daemon connection is given back in one
place (`handle_request`).

Nothing is forwarded that was not parsed as part of an allowed request: the upstream request
head is rebuilt from parsed fields, bodies are forwarded on the framing that was parsed, and a
connection whose next bytes cannot be located (an unread body after a deny) is closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from docker_socket_operator.catalogue.operations import link_parent
from docker_socket_operator.catalogue.paths import forward_target
from docker_socket_operator.catalogue.types import Operation
from docker_socket_operator.policy.compile import OWNED_NEVER, CompiledPolicy
from docker_socket_operator.policy.constraints import is_volume_name
from docker_socket_operator.policy.decide import NOT_VISIBLE, decide
from docker_socket_operator.policy.filters import (
    ANSWER_FILTERS,
    WITHHELD,
    EventVisibility,
    container_facts_from_inspect,
    create_container_refs,
    create_volume_names,
    error_names_hidden,
    owned_objects,
    volume_visible,
)
from docker_socket_operator.policy.ownership import forwarded_request
from docker_socket_operator.policy.queries import list_filter_refs, list_target_with_ids
from docker_socket_operator.policy.types import (
    BadBody,
    ContainerFacts,
    CreateContext,
    Decision,
    RequestFacts,
)
from docker_socket_operator.proxy.answers import AnswerMemo
from docker_socket_operator.proxy.audit import AuditLog, AuditRecord, log_event
from docker_socket_operator.proxy.bodies import (
    discard_request_body,
    pipe_hijacked,
    read_request_body,
    relay_events_filtered,
    relay_response,
    stream_request_body,
)
from docker_socket_operator.proxy.facts import Reading, Readings, operation_name, with_body
from docker_socket_operator.proxy.http1 import (
    HEAD_LIMIT,
    Framing,
    HttpError,
    RequestHead,
    ResponseHead,
    UpstreamProtocolError,
    is_form_body,
    json_error,
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
from docker_socket_operator.proxy.stream import ClientStream
from docker_socket_operator.proxy.upstream import (
    AnswerRelay,
    UpstreamConnection,
    UpstreamPool,
    UpstreamUnavailable,
)
from docker_socket_operator.proxy.watchdog import HeadTimeout, HeadWatch

DISCARD_LIMIT = 64 * 1024  # an unread body up to this size is skipped after a deny
FILTER_LIMIT = 64 << 20  # largest list/inspect answer the proxy rewrites
CLIENT_WRITE_HIGH = 1 << 20
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
INSPECT = "containers.inspect"
LIST = "containers.list"

Resolved = ContainerFacts | tuple[ResponseHead, bytes]


class Exchange:
    """One request and what comes of it: the client it came on, its head and facts, the policy
    it is decided by and the decision, the daemon connection it went out on, the audit record."""

    __slots__ = (
        "answer",
        "body",
        "client",
        "decision",
        "facts",
        "policy",
        "reading",
        "rec",
        "req",
        "reusable",
        "rewrites",
        "upstream",
    )

    def __init__(
        self,
        client: ClientStream,
        req: RequestHead | None,
        policy: CompiledPolicy,
        rec: AuditRecord,
        reading: Reading | None = None,
    ) -> None:
        self.client = client
        self.req = req
        self.policy = policy
        self.rec = rec
        self.reading = reading  # what the head's bytes mean (kept for a repeat: proxy/facts.py)
        self.facts = reading.facts if reading is not None else None
        self.decision: Decision | None = None
        self.body: bytes | None = None  # the request body, when the policy read it
        self.upstream: UpstreamConnection | None = None
        self.reusable = False  # the daemon connection may carry another request
        self.rewrites = False  # a 200 answer is rewritten or filtered (set when forwarded)
        # The daemon's answer when resolving the container already was the request (an
        # inspect), and its decoded JSON when it was decoded
        self.answer: tuple[ResponseHead, bytes, Any] | None = None

    @property
    def head(self) -> RequestHead:
        assert self.req is not None
        return self.req


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
        self.tasks: set[asyncio.Task[None]] = set()
        self.readings = Readings()
        self.answers = AnswerMemo()

    def _client(self) -> ClientStream:
        return ClientStream(HEAD_LIMIT, self.handle_client, self.tasks)

    async def listen_unix(self, path: str) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_unix_server(self._client, path, backlog=1024)

    async def listen_tcp(self, host: str | None, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(self._client, host, port, backlog=1024, reuse_address=True)

    def close(self) -> None:
        """Stop serving: the watchdog and every connection's handler."""
        self.watch.close()
        for task in list(self.tasks):
            task.cancel()

    async def handle_client(self, client: ClientStream) -> None:
        metrics = self.metrics
        transport = client.transport
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else None
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        refused = self.connections.admit(ip)
        if refused is not None:
            # Answered without reading: the caps exist so that a flood costs nothing more.
            metrics.connections_refused += 1
            rec = AuditRecord(name, "", "", time.perf_counter(), "connection", "reject")
            self._refuse(Exchange(client, None, self.holder.policy, rec), HttpError(503, refused))
            client.close()
            return
        metrics.open_connections += 1
        metrics.connections_total += 1
        transport.set_write_buffer_limits(high=CLIENT_WRITE_HIGH)
        readings, holder, pool = self.readings, self.holder, self.pool
        try:
            first = True
            while True:
                started = time.perf_counter()
                try:
                    head = await self._next_head(client, first)
                    if head is None:
                        break
                    reading = readings.read(head, pool.engine)
                except HttpError as e:
                    rec = AuditRecord(name, "", "", started, "malformed", "reject", "", e.message)
                    self._refuse(Exchange(client, None, holder.policy, rec), e)
                    break
                # Once a request is being served no timer runs on the client: streams (events,
                # logs follow, attach, exec) are exempt once started.
                if isinstance(reading, tuple):  # a head that parsed, with a target refused
                    req, error = reading
                    rec = AuditRecord(name, req.method, req.target[:2048], time.perf_counter())
                    self._refuse(Exchange(client, req, holder.policy, rec), error)
                    break
                req = reading.req
                rec = AuditRecord(name, req.method, req.target[:2048], time.perf_counter())
                if not await self.handle_request(
                    Exchange(client, req, holder.policy, rec, reading)
                ):
                    break
                if client.writing_paused:
                    # A client that sends on without reading its answers is not read further
                    # until it catches up (its answers would pile up here), nor waited for
                    # longer than a body.
                    async with asyncio.timeout(self.limits.body_timeout):
                        await client.drain()
                first = False
            async with asyncio.timeout(self.limits.body_timeout):
                await client.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError, UpstreamProtocolError):
            pass
        except TimeoutError:
            pass  # a client that does not read its last answer
        except asyncio.CancelledError:
            pass  # shutdown: the listener is closing, nothing awaits this handler
        finally:
            metrics.open_connections -= 1
            self.connections.release(ip)
            client.close()

    async def _next_head(self, client: ClientStream, first: bool) -> bytes | None:
        """The next request head: a connection's first within the head timeout of its start;
        a later one within the idle timeout, and then its head within the head timeout of its
        first line. None: the client closed, or stayed idle."""
        limits = self.limits
        watch = self.watch
        watch.arm(client, limits.head_timeout if first else limits.idle_timeout)
        try:
            return await read_request_head(client, None if first else watch)
        except HeadTimeout as e:
            if not first and not e.begun:
                return None  # idle between requests: close quietly, as HAProxy does
            self.metrics.timeouts += 1
            raise HttpError(
                408, f"request head not received within {limits.head_timeout:g} seconds"
            ) from None
        finally:
            watch.disarm(client)

    # -- the one way an exchange ends --------------------------------------------------------

    def _finish(self, ex: Exchange, status: int, decision: str = "", reason: str = "") -> None:
        """Count and log the exchange, as its answer goes out."""
        rec = ex.rec
        rec.status = status
        if decision:
            rec.decision = decision
        if reason:
            rec.reason = reason
        self.audit.finish(rec, ex.policy.audit)

    def _answer(
        self, ex: Exchange, status: int, data: bytes, decision: str = "", reason: str = ""
    ) -> None:
        ex.client.write(data)
        self._finish(ex, status, decision, reason)

    def _refuse(self, ex: Exchange, e: HttpError, decision: str = "reject") -> None:
        self._answer(
            ex, e.status, json_error(e.status, e.message, close=e.close), decision, e.message
        )

    def _fail(self, ex: Exchange, status: int, message: str) -> None:
        """An error after the decision: answered only if nothing was sent to the client yet."""
        if not ex.rec.finished:
            self._refuse(ex, HttpError(status, message), "error")

    async def handle_request(self, ex: Exchange) -> bool:
        """Serve one request; True when the connection can carry the next one."""
        try:
            return await self._serve(ex)
        except HttpError as refused:
            self._refuse(ex, refused)
            return False
        except UpstreamUnavailable as unavailable:
            self.metrics.upstream_errors += 1
            self._fail(ex, 502, str(unavailable))
            return False
        except UpstreamProtocolError as bad:
            self.metrics.upstream_errors += 1
            self._fail(ex, 502, f"bad response from the daemon: {bad}")
            return False
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            raise
        except Exception as bug:  # must not leave the client hanging, nor let anything through
            log_event("internal error", error=repr(bug), method=ex.head.method, path=ex.rec.path)
            self._fail(ex, 500, "internal proxy error")
            return False
        finally:
            if ex.upstream is not None:
                self.pool.release(ex.upstream, ex.reusable)

    async def _keep_after_refusal(self, ex: Exchange) -> bool:
        """Whether the connection can go on after a request answered without forwarding it:
        only when the body, if any, was read or can be skipped."""
        req = ex.head
        if not req.keep_alive:
            return False
        if ex.body is not None:
            return True
        return await discard_request_body(ex.client, req, DISCARD_LIMIT, self.limits.body_timeout)

    # -- deciding ----------------------------------------------------------------------------

    async def _serve(self, ex: Exchange) -> bool:
        req, policy, facts = ex.head, ex.policy, ex.facts
        assert facts is not None
        if req.has_body and is_form_body(req.content_type):
            raise HttpError(400, "form-encoded bodies are not accepted")
        op = facts.op
        ex.rec.operation = operation_name(facts)
        if req.upgrade_websocket and (op is None or op.name != "containers.attach-websocket"):
            raise HttpError(
                400, "a websocket upgrade is only accepted on containers/{id}/attach/ws"
            )
        if op is not None and req.has_body and policy.needs_body(op):
            if req.expect_continue:
                ex.client.write(CONTINUE)
            ex.body = await read_request_body(
                ex.client, req, policy.max_body, self.limits.body_timeout
            )
            facts = with_body(facts, ex.body)

        api_path: str | None = None
        missing_hidden = False
        if op is not None and policy.needs_container(op):
            parent = link_parent(op, facts.params, facts.query)
            own = None
            if op.name == "containers.inspect" and req.method == "GET" and not facts.query:
                # The inspect that tells the policy about the container is the request itself:
                # its answer, about exactly the container decided on, is the one relayed.
                assert facts.target is not None
                own = (
                    ex.reading.own_target()
                    if ex.reading is not None and facts.target is ex.reading.facts.target
                    else forward_target(facts.target)
                )
            resolved = await self._resolve_container(
                policy, op, parent or facts.params.get("id", ""), ex, own
            )
            if isinstance(resolved, tuple):
                if resolved[0].status != 404 or policy.visibility is None:
                    return await self._answer_unforwarded(ex, resolved)
                # Under visibility a missing container is answered like a hidden one: the
                # daemon's 404 would tell a client which names exist outside its view.
                missing_hidden = True
            else:
                reading = ex.reading
                facts = (
                    reading.with_container(facts, resolved)
                    if reading is not None
                    else facts.but(container=resolved)
                )
                # dockerd finds a link by its name only: a link removal goes on by name.
                if op.target == "container" and parent is None and own is None:
                    api_path = rewrite_path(op.template, facts.params, resolved.id)
        if op is not None and policy.needs_object(op):
            found = await self._resolve_object(op, facts.params)
            if isinstance(found, tuple):
                return await self._answer_unforwarded(ex, found)
            facts = facts.but(object_labels=found.labels)
            member = facts.body.get("container") if isinstance(facts.body, dict) else None
            if op.name in OWNED_NEVER and isinstance(member, str) and member:
                who = await self._resolve_container(policy, op, member)
                if isinstance(who, tuple):
                    return await self._answer_unforwarded(ex, who)
                facts = facts.but(container=who)
            if op.target == "network":  # acted on by the ID decided on, as containers are
                api_path = rewrite_path(op.template, facts.params, found.id)
        if facts.body is not None:
            engine = await self.pool.current_engine()
            if engine != facts.engine:
                facts = facts.but(engine=engine)
        ex.facts = facts

        try:
            reading = ex.reading
            decision = decide(policy, facts) if reading is None else reading.decided(policy, facts)
            if decision.allow and op is not None and op.name == "containers.create":
                # What the create would take from the daemon as it is, looked up only for a
                # body that passes on its own, then decided on again with it.
                facts = ex.facts = facts.but(create_context=await self._create_context(facts))
                decision = decide(policy, facts)
        except BadBody as e:
            raise HttpError(400, f"invalid request body: {e}") from None
        if missing_hidden and decision.allow:
            decision = Decision(False, "visibility", NOT_VISIBLE)
        if decision.allow and op is not None and policy.visibility is not None:
            hidden = await self._hidden_data(policy, op, facts.params, facts.body)
            if hidden is None and op.name == LIST:
                listed = await self._list_refs_resolved(policy, op, facts)
                hidden, facts = (listed, facts) if isinstance(listed, HttpError) else (None, listed)
                ex.facts = facts
            if hidden is not None:
                return await self._answer_unforwarded(ex, hidden)
        ex.decision = decision
        rec = ex.rec
        rec.rule = decision.rule
        rec.reason = decision.reason
        rec.request = facts
        if not decision.allow:
            keep = await self._keep_after_refusal(ex)
            message = f"blocked by policy: {decision.reason or decision.rule}"
            self._answer(ex, 403, json_error(403, message, close=not keep), "deny")
            return keep
        rec.decision = "would-deny" if decision.would_deny else "allow"
        if policy.owner is not None and op is not None:
            assert facts.target is not None
            try:
                target, body = forwarded_request(
                    policy.owner,
                    op.name,
                    decision.owned,
                    facts.target,
                    facts.query,
                    facts.body,
                    await self.pool.current_engine(),
                )
            except BadBody as e:
                raise HttpError(400, f"invalid request: {e}") from None
            ex.facts = facts.but(target=target)
            ex.body = body if body is not None else ex.body
        return await self._forward(ex, api_path)

    async def _create_context(self, facts: RequestFacts) -> CreateContext:
        """The existing named volumes a create body mounts (they keep the options they were
        made with) and, on an engine other than dockerd, the image's Config (Podman's systemd
        mode reads its command): what the create checks read besides the body."""
        volumes: dict[str, Any] = {}
        for name in dict.fromkeys(create_volume_names(facts.body)):
            if not is_volume_name(name):
                continue  # a path or no name at all: the body's own checks refuse it
            resp, raw = await self.pool.simple_get(f"/volumes/{quote(name, safe='')}")
            if resp.status == 200:
                volumes[name] = decode_json(raw)
            elif resp.status != 404:
                raise UpstreamProtocolError(f"volume inspect answered {resp.status}")
        image_config = None
        image = facts.body.get("image") if isinstance(facts.body, dict) else None
        if facts.engine != "docker" and isinstance(image, str) and image:
            resp, raw = await self.pool.simple_get(f"/images/{quote(image, safe='/:@')}/json")
            doc = decode_json(raw) if resp.status == 200 else None
            config = doc.get("Config") if isinstance(doc, dict) else None
            image_config = config if isinstance(config, dict) else None
        return CreateContext(volumes, image_config)

    async def _resolve_object(self, op: Operation, params: Mapping[str, str]) -> Resolved:
        """The network or volume the path names, by inspecting it upstream: its ID and labels
        (as a ContainerFacts), or the daemon's own non-200 answer."""
        ref = params.get("id" if op.target == "network" else "name", "")
        kind = "networks" if op.target == "network" else "volumes"
        resp, raw = await self.pool.simple_get(f"/{kind}/{quote(ref, safe='')}")
        if resp.status != 200:
            return resp, raw
        doc = self._json(raw)
        labels = doc.get("Labels")
        return ContainerFacts(
            id=str(doc.get("Id") or doc.get("Name") or ""),
            name=str(doc.get("Name") or ""),
            labels={k: v for k, v in labels.items() if isinstance(v, str)}
            if isinstance(labels, dict)
            else {},
        )

    async def _resolve_container(
        self,
        policy: CompiledPolicy,
        op: Operation,
        ref: str,
        ex: Exchange | None = None,
        own: str | None = None,
    ) -> Resolved:
        """The container a request is about, by inspecting it upstream (an exec ID is mapped
        to its container first); the daemon's own non-200 answer is returned as is. A ref
        may hold '/' (a legacy link name), as dockerd's `{name:.*}` routes allow. With `own`
        (the request's own inspect path) the inspect is the request, kept on `ex` as its answer."""
        if op.target == "exec":
            resp, raw = await self.pool.simple_get(f"/exec/{quote(ref, safe='/')}/json")
            if resp.status != 200:
                return resp, raw
            ref = str(self._json(raw).get("ContainerID", ""))
        path = own if own is not None else f"/containers/{quote(ref, safe='/')}/json"
        resp, raw = await self.pool.simple_get(path)
        if resp.status != 200:
            return resp, raw
        # Host power is what audit mode's floor asks about; no other check reads it.
        host_power = policy.mode == "audit"
        doc = None
        facts = self.answers.facts(INSPECT, raw, host_power)
        if facts is None:
            doc = self._json(raw)
            try:
                facts = container_facts_from_inspect(doc, host_power=host_power)
            except BadBody as e:
                raise UpstreamProtocolError(f"unexpected container inspect answer: {e}") from None
            self.answers.keep_facts(INSPECT, raw, host_power, facts)
        if own is not None and ex is not None:
            ex.answer = (resp, raw, doc)
        return facts

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        doc = decode_json(raw)
        if not isinstance(doc, dict):
            raise UpstreamProtocolError("daemon answered an inspect with a non-object")
        return doc

    async def _containers(self) -> list[Any]:
        """Every container on the daemon, as its list shows them (names, labels, mounts)."""
        items = await self._listed("/containers/json?all=1")
        if not isinstance(items, list):
            raise UpstreamProtocolError("container list is not a list")
        return items

    async def _inspected(self, kind: str, ref: str) -> Any:
        """A network's or volume's inspect answer, decoded; None when the daemon has no such
        object or will not say (the object stays unknown, and what is not known to be owned
        stays hidden)."""
        resp, raw = await self.pool.simple_get(f"/{kind}s/{quote(ref, safe='')}")
        return decode_json(raw) if resp.status == 200 else None

    async def _listed(self, path: str) -> Any:
        """A list answer of the daemon (containers, networks, volumes), decoded."""
        resp, raw = await self.pool.simple_get(path, FILTER_LIMIT)
        if resp.status != 200:
            raise UpstreamProtocolError(f"{path} failed (status {resp.status})")
        return decode_json(raw)

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
                found = await self._resolve_container(policy, op, ref)
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

    async def _list_refs_resolved(
        self, policy: CompiledPolicy, op: Operation, facts: RequestFacts
    ) -> RequestFacts | HttpError:
        """Under visibility, a container list's `since`/`before` filters (policy/queries.py)
        must each name a visible container: resolved by an upstream inspect, and forwarded as
        the full ID decided on. A hidden container and a missing one get the same 403."""
        raw = facts.query.get("filters")
        try:
            refs = list_filter_refs(raw)
        except BadBody as e:
            raise HttpError(400, f"invalid filters: {e}") from None
        ids: dict[str, str] = {}
        for ref in refs:
            found = await self._resolve_container(policy, op, ref) if ref else None
            if found is None or isinstance(found, tuple) or not policy.container_visible(found):
                return HttpError(403, f"blocked by policy: {NOT_VISIBLE} (filter {ref!r})")
            ids[ref] = found.id
        if not ids:
            return facts
        assert facts.target is not None
        return facts.but(target=list_target_with_ids(facts.target, facts.query, ids))

    def _withheld(self, ex: Exchange, raw: bytes, own_id: str) -> bytes:
        """A daemon error body, or WITHHELD when under visibility it may name a hidden object
        (a name conflict with a hidden container, the users of a volume...)."""
        if ex.policy.visibility is None or not error_names_hidden(raw, ex.head.target, own_id):
            return raw
        return json_bytes({"message": WITHHELD})

    async def _answer_unforwarded(
        self, ex: Exchange, answer: tuple[ResponseHead, bytes] | HttpError
    ) -> bool:
        """A request answered without forwarding it: the daemon's own answer when the target
        container does not exist (or the inspect failed), or the proxy's when the data the
        request touches refuses it (a hidden volume)."""
        keep = await self._keep_after_refusal(ex)
        if isinstance(answer, HttpError):
            ex.rec.rule = "visibility"
            data = json_error(answer.status, answer.message, close=not keep)
            self._answer(ex, answer.status, data, "deny", answer.message)
        else:
            resp, raw = answer
            reason = "target container not found" if resp.status == 404 else "inspect failed"
            raw = b"" if ex.head.method == "HEAD" else self._withheld(ex, raw, "")
            self._answer(ex, resp.status, resp.rebuilt(len(raw)) + raw, "unresolved", reason)
        return keep

    # -- forwarding --------------------------------------------------------------------------

    async def _forward(self, ex: Exchange, api_path: str | None) -> bool:
        if ex.answer is not None:
            resp, raw, doc = ex.answer
            out = await self._rewritten(ex, resp, raw, doc)
            self._answer(ex, resp.status, resp.rebuilt(len(out)) + out)
            return ex.head.keep_alive
        req, facts, body = ex.head, ex.facts, ex.body
        assert facts is not None and facts.target is not None
        op = facts.op
        hijack = op is not None and op.hijack
        reading = ex.reading
        if (
            reading is not None
            and api_path is None
            and body is None
            and reading.facts.target is facts.target
        ):
            # Nothing rewritten (the reading's own target, no body read): the head forwarded is
            # a function of the head received, kept with its reading.
            head = reading.forward
            if head is None:
                head = reading.forward = upstream_request_head(
                    req, facts.target, None, None, hijack
                )
        else:
            head = upstream_request_head(
                req, facts.target, api_path, None if body is None else len(body), hijack
            )
        streamed = body is None and req.has_body
        client = ex.client
        timeout = self.limits.body_timeout

        # An answer rewritten for the client is read by this coroutine whatever its bytes: the
        # daemon connection's callback need not look at it.
        ex.rewrites = self._rewrites(ex)
        relay = (
            None
            if ex.rewrites
            else AnswerRelay(client.transport, req.method, lambda resp: self._as_is(ex, resp))
        )

        async def send(conn: UpstreamConnection) -> ResponseHead:
            conn.write(head if body is None else head + body)
            if streamed:
                if req.expect_continue:
                    client.write(CONTINUE)
                await stream_request_body(client, req, conn, timeout)
            return await conn.read_head(req.method, relay)

        ex.upstream, resp = await self.pool.request(send, replayable=not streamed)
        if relay is None or relay.resp is None:
            return await self._respond(ex, resp)
        # Sent, or being sent, as it arrives (an as-is answer): only counted and logged here.
        self._finish(ex, resp.status)
        clean = relay.clean if relay.body is None else await relay.body.run(client)
        ex.reusable = clean and resp.reusable and req.version == "HTTP/1.1"
        return req.keep_alive and resp.reusable

    async def _rewritten(
        self, ex: Exchange, resp: ResponseHead, raw: bytes, doc: Any = None
    ) -> bytes:
        """A GET's 200 answer body as its operation's filter (policy/filters.py) rewrites it
        for this client; `raw` as it is when no filter applies. `doc`: `raw` decoded, if it
        was. A rewrite that reads nothing but the answer and the policy is kept for the same
        bytes (proxy/answers.py); one that also reads the container list (under visibility,
        and for an answer that names other containers) is not. A rewrite that changes
        nothing sends `raw` as it came."""
        policy, op = ex.policy, ex.facts.op if ex.facts is not None else None
        if resp.status != 200 or ex.head.method != "GET" or op is None:
            return raw
        answer_filter = ANSWER_FILTERS.get(op.name)
        if answer_filter is None or not answer_filter.applies(policy):
            return raw
        visibility = policy.visibility is not None
        needs = answer_filter.needs_containers and visibility
        if not needs:
            kept = self.answers.rewritten(op.name, raw, policy)
            if kept is not None:
                return kept
        if doc is None:
            doc = decode_json(raw)
        if not needs and visibility and answer_filter.refers is not None:
            needs = answer_filter.refers(doc)  # names other containers: rare, not kept
        containers = await self._containers() if needs else []
        rewritten = answer_filter.rewrite(policy, doc, containers)
        out = raw if rewritten is doc else json_bytes(rewritten)
        if not needs:
            self.answers.keep_rewritten(op.name, raw, policy, out)
        return out

    def _as_is(self, ex: Exchange, resp: ResponseHead) -> bool:
        """Whether the daemon's answer goes to the client unchanged: not a switch of protocols,
        not rewritten by its operation's filter, not an events stream filtered for the
        client (`ex.rewrites`, worked out once by _forward), not an error text that
        visibility may withhold."""
        status, policy, method = resp.status, ex.policy, ex.head.method
        op = ex.facts.op if ex.facts is not None else None
        if status == 101:
            return False
        if op is None:
            return not (status >= 400 and policy.visibility is not None and method != "HEAD")
        if op.hijack and status == 200 and resp.raw_stream and resp.framing is Framing.CLOSE:
            return False
        if status == 200 and ex.rewrites:
            return False
        return not (status >= 400 and policy.visibility is not None and method != "HEAD")

    @staticmethod
    def _rewrites(ex: Exchange) -> bool:
        """Whether a 200 answer to this request is rewritten by its operation's filter or, for
        an events stream, filtered for the client."""
        op = ex.facts.op if ex.facts is not None else None
        if op is None or ex.head.method != "GET":
            return False
        policy = ex.policy
        answer_filter = ANSWER_FILTERS.get(op.name)
        if answer_filter is not None and answer_filter.applies(policy):
            return True
        return op.name == "system.events" and policy.filters_containers

    async def _respond(self, ex: Exchange, resp: ResponseHead) -> bool:
        req, policy, client, conn = ex.head, ex.policy, ex.client, ex.upstream
        assert conn is not None and ex.facts is not None
        op = ex.facts.op
        name = op.name if op is not None else ""
        if self._as_is(ex, resp):
            # An answer whose head came while this coroutine waited went out from the daemon
            # connection's callback (AnswerRelay, in _forward); any other is relayed here.
            self._finish(ex, resp.status)
            clean = await relay_response(conn, resp, resp.raw, client)
        elif resp.status == 101 or (
            op is not None
            and op.hijack
            and resp.status == 200
            and resp.raw_stream
            and resp.framing is Framing.CLOSE
        ):
            if op is None or not op.hijack:
                raise UpstreamProtocolError("daemon switched protocols on a non-hijack operation")
            self._answer(ex, resp.status, resp.raw)
            await pipe_hijacked(client, conn)
            return False
        elif resp.status == 200 and req.method == "GET" and name != "system.events":
            out = await self._rewritten(ex, resp, await conn.read_body(resp, FILTER_LIMIT))
            self._answer(ex, resp.status, resp.rebuilt(len(out)) + out)
            clean = True
        elif resp.status == 200 and req.method == "GET":
            owned = None
            if policy.owner is not None and ex.decision is not None and ex.decision.owned:
                owned = owned_objects(
                    policy.owner, await self._listed("/networks"), await self._listed("/volumes")
                )
            visible = EventVisibility(policy, await self._containers(), owned)
            self._finish(ex, resp.status)
            clean = await relay_events_filtered(conn, resp, client, visible, self._inspected)
        else:  # an error text under visibility
            own_id = ex.facts.container.id if ex.facts.container is not None else ""
            out = self._withheld(ex, await conn.read_body(resp, FILTER_LIMIT), own_id)
            self._answer(ex, resp.status, resp.rebuilt(len(out)) + out)
            clean = True
        ex.reusable = clean and resp.reusable and req.version == "HTTP/1.1"
        return req.keep_alive and resp.reusable
