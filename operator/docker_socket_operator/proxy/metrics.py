"""Prometheus metrics kept as plain counters (no client library: a dict increment per request)."""

from __future__ import annotations

PREFIX = "docker_socket_proxy"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.bucket_counts = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.open_connections = 0
        self.connections_total = 0
        self.upstream_errors = 0
        self.connections_refused = 0  # over a connection cap (503)
        self.timeouts = 0  # request heads or bodies not received in time
        self.reloads: dict[str, int] = {"success": 0, "failure": 0}
        self.policy_generation = 0
        self.policy_hash = ""

    def observe(self, operation: str, decision: str, seconds: float) -> None:
        key = (operation, decision)
        self.requests[key] = self.requests.get(key, 0) + 1
        # A compiled loop over 14 bounds: cheaper than a call into the bisect module.
        i = 0
        for bound in BUCKETS:
            if seconds <= bound:
                break
            i += 1
        self.bucket_counts[i] += 1
        self.duration_sum += seconds
        self.duration_count += 1

    def render(self) -> str:
        p = PREFIX
        out = [
            f"# HELP {p}_requests_total Requests by operation and decision (allow, would-deny, deny...).",
            f"# TYPE {p}_requests_total counter",
        ]
        for (op, decision), n in sorted(self.requests.items()):
            out.append(f'{p}_requests_total{{operation="{_label(op)}",decision="{decision}"}} {n}')
        out += [
            f"# HELP {p}_request_duration_seconds Time from request head to response head.",
            f"# TYPE {p}_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(BUCKETS, self.bucket_counts, strict=False):
            cumulative += n
            out.append(f'{p}_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
        out.append(f'{p}_request_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
        out.append(f"{p}_request_duration_seconds_sum {self.duration_sum:.6f}")
        out.append(f"{p}_request_duration_seconds_count {self.duration_count}")
        out += [
            f"# HELP {p}_open_connections Client connections open now.",
            f"# TYPE {p}_open_connections gauge",
            f"{p}_open_connections {self.open_connections}",
            f"# HELP {p}_connections_total Client connections accepted.",
            f"# TYPE {p}_connections_total counter",
            f"{p}_connections_total {self.connections_total}",
            f"# HELP {p}_connections_refused_total Connections over a connection cap (503).",
            f"# TYPE {p}_connections_refused_total counter",
            f"{p}_connections_refused_total {self.connections_refused}",
            f"# HELP {p}_client_timeouts_total Request heads or bodies not received in time.",
            f"# TYPE {p}_client_timeouts_total counter",
            f"{p}_client_timeouts_total {self.timeouts}",
            f"# HELP {p}_upstream_errors_total Daemon connections that failed.",
            f"# TYPE {p}_upstream_errors_total counter",
            f"{p}_upstream_errors_total {self.upstream_errors}",
            f"# HELP {p}_policy_reloads_total Policy file reloads by result.",
            f"# TYPE {p}_policy_reloads_total counter",
        ]
        for result, n in sorted(self.reloads.items()):
            out.append(f'{p}_policy_reloads_total{{result="{result}"}} {n}')
        out += [
            f"# HELP {p}_policy_generation Policies loaded since start (1 = the first).",
            f"# TYPE {p}_policy_generation gauge",
            f"{p}_policy_generation {self.policy_generation}",
            f"# HELP {p}_policy_info The policy in force (hash of its source).",
            f"# TYPE {p}_policy_info gauge",
            f'{p}_policy_info{{hash="{_label(self.policy_hash)}"}} 1',
        ]
        return "\n".join(out) + "\n"
