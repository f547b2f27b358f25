"""The filtering Docker Engine API proxy: an asyncio HTTP/1.1 shell around the pure policy core.

http1 + chunked (parsing and framing, pure) · messages (heads in, requests out) · upstream
(unix-socket pool) · bodies (relays, filters, hijack) · server (per-connection request loop) ·
audit · metrics + admin (health, readiness, Prometheus) · reload (policy file watcher).

The modules every request runs through are compiled with mypyc when built so (setup.py);
the same source runs as pure Python otherwise.
"""

from __future__ import annotations


def build() -> str:
    """ "compiled" when the request path runs as mypyc's C modules (setup.py), else "python"."""
    from docker_socket_operator.proxy import server

    return "python" if server.__file__ is None or server.__file__.endswith(".py") else "compiled"
