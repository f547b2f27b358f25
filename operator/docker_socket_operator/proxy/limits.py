"""Timeouts and connection caps (as HAProxy's `timeout http-request`, `timeout
http-keep-alive`, `maxconn`): a client that is slow to send its request, or that opens too many
connections, costs the proxy a bounded amount of time and descriptors.

Pure bookkeeping: the shell asks `admit` when a connection opens and calls `release` when it
closes; the counts are two integers and a dict, checked once per connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limits:
    head_timeout: float = 10.0  # a whole request head, from the connection's start / first line
    idle_timeout: float = 60.0  # between requests on a kept-alive connection
    body_timeout: float = 30.0  # a buffered body in total; a streamed body between two reads
    max_connections: int = 4096  # open client connections, all listeners together
    max_connections_per_client: int = 256  # per peer IP address (TCP); 0 = no per-client cap

    @property
    def tick(self) -> float:
        """How often head deadlines are checked: a quarter of the shortest, within 50 ms..1 s."""
        return min(1.0, max(0.05, min(self.head_timeout, self.idle_timeout) / 4))

    def check(self) -> None:
        for name in ("head_timeout", "idle_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be a positive number of seconds")
        if self.max_connections < 1:
            raise ValueError("max-connections must be at least 1")
        if self.max_connections_per_client < 0:
            raise ValueError("max-connections-per-client must not be negative")


@dataclass(slots=True)
class ConnectionCounter:
    limits: Limits
    total: int = 0
    per_client: dict[str, int] = field(default_factory=dict)

    def admit(self, client_ip: str | None) -> str | None:
        """Count a new connection in, or say why it is refused (nothing is counted then).
        `client_ip` is None for Unix-socket peers, which share the total cap only."""
        if self.total >= self.limits.max_connections:
            return f"too many connections to the proxy (limit {self.limits.max_connections})"
        cap = self.limits.max_connections_per_client
        if client_ip is not None and cap:
            count = self.per_client.get(client_ip, 0)
            if count >= cap:
                return f"too many connections from {client_ip} (limit {cap} per client)"
            self.per_client[client_ip] = count + 1
        self.total += 1
        return None

    def release(self, client_ip: str | None) -> None:
        self.total -= 1
        if client_ip is not None and self.limits.max_connections_per_client:
            left = self.per_client[client_ip] - 1
            if left:
                self.per_client[client_ip] = left
            else:
                del self.per_client[client_ip]
