"""The filtering Docker Engine API proxy: an asyncio HTTP/1.1 shell around the pure policy core.

http1 + chunked (parsing and framing, pure) · messages (heads in, requests out) · upstream
(unix-socket pool) · bodies (relays, filters, hijack) · server (per-connection request loop) ·
audit · metrics + admin (health, readiness, Prometheus) · reload (policy file watcher).
"""
