"""The audit log (one JSON line per request: who, what, which rule, what came of it) and the
proxy's own structured log lines on stderr.

Audit lines are buffered and flushed a moment later, so an `audit: all` policy costs a list
append per request rather than a write system call.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import IO, Any

from docker_socket_operator.policy.asks import audit_facts
from docker_socket_operator.policy.types import RequestFacts
from docker_socket_operator.proxy.metrics import Metrics

FLUSH_DELAY = 0.05


def log_event(msg: str, **fields: Any) -> None:
    """A structured log line on stderr (startup, reloads, errors)."""
    line = {"ts": _now(), "msg": msg, **fields}
    print(json.dumps(line, default=str), file=sys.stderr, flush=True)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class AuditRecord:
    """One request's record, filled in as it is served (a plain class, not a dataclass: it is
    made per request, and a compiled class's own __init__ costs a tenth of a dataclass's)."""

    __slots__ = (
        "client",
        "decision",
        "finished",
        "method",
        "operation",
        "path",
        "reason",
        "request",
        "rule",
        "started",
        "status",
    )

    def __init__(
        self,
        client: str,
        method: str,
        path: str,
        started: float,  # time.perf_counter() when the request head was parsed
        operation: str = "",
        decision: str = "",  # allow | would-deny (audit mode) | deny | reject | error | unresolved
        rule: str = "",
        reason: str = "",
    ) -> None:
        self.client = client
        self.method = method
        self.path = path
        self.started = started
        self.operation = operation
        self.decision = decision
        self.rule = rule
        self.reason = reason
        self.status = 0
        self.finished = False  # counted and logged; the client has (or is getting) its answer
        # What the request reached and asked for, turned into audit fields (policy/asks.py,
        # read by `suggest`) only when the line is written: most requests are counted, not
        # logged.
        self.request: RequestFacts | None = None


class AuditLog:
    def __init__(self, metrics: Metrics, destination: str | None = None) -> None:
        self.metrics = metrics
        self._out: IO[str] = (
            sys.stderr
            if destination in (None, "", "-")
            else open(destination, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        )
        self._buffer: list[str] = []
        self._flush_scheduled = False

    def finish(self, rec: AuditRecord, mode: str) -> None:
        """Count the request and, as the policy's audit mode says, log it."""
        rec.finished = True
        duration = time.perf_counter() - rec.started
        self.metrics.observe(rec.operation, rec.decision, duration)
        if mode == "none" or (mode == "denied" and rec.decision == "allow"):
            return
        line = {
            "ts": _now(),
            "client": rec.client,
            "method": rec.method,
            "path": rec.path,
            "operation": rec.operation,
            "decision": rec.decision,
            "rule": rec.rule,
            "reason": rec.reason,
            "status": rec.status,
            "duration_ms": round(duration * 1000, 3),
        }
        if rec.request is not None:
            line.update(audit_facts(rec.request))
        self._buffer.append(json.dumps(line))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._buffer:
            return
        text = "\n".join(self._buffer) + "\n"
        self._buffer.clear()
        try:
            self._out.write(text)
            self._out.flush()
        except OSError as e:
            log_event("audit log write failed", error=str(e))
