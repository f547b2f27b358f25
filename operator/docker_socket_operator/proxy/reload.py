"""The policy in force, and the watcher that swaps it when its file changes.

Kubernetes updates a mounted ConfigMap by re-pointing a `..data` symlink, so the file's own
inode may never change: the watcher stats the path *through* its symlinks and also compares the
resolved real path. A policy that fails to load is logged and the previous one stays; a good one
is swapped in with one assignment, so requests in flight and open streams keep the policy they
started with and every new request sees the new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from docker_socket_operator.policy.compile import CompiledPolicy, compile_policy, load_policy_file
from docker_socket_operator.policy.tecnativa import spec_from_tecnativa_env, unallowed_hints
from docker_socket_operator.policy.types import PolicyError
from docker_socket_operator.proxy.audit import log_event
from docker_socket_operator.proxy.metrics import Metrics

POLL_INTERVAL = 0.5

FileSignature = tuple[str, int, int, int, int]


class PolicyHolder:
    """The current compiled policy; read `holder.policy` once per request."""

    def __init__(self, policy: CompiledPolicy, source: str, digest: str, metrics: Metrics) -> None:
        self.policy = policy
        self.source = source
        self.digest = digest
        self.metrics = metrics
        metrics.policy_generation = 1
        metrics.policy_hash = digest

    def swap(self, policy: CompiledPolicy, digest: str) -> None:
        self.policy = policy
        self.digest = digest
        self.metrics.policy_generation += 1
        self.metrics.policy_hash = digest


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def file_signature(path: str) -> FileSignature | None:
    """What identifies this version of the file (following symlinks), or None if missing."""
    try:
        st = os.stat(path)
        real = os.path.realpath(path)
    except OSError:
        return None
    return (real, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def load_from_file(path: str) -> tuple[CompiledPolicy, str]:
    """Compile the policy file (raises PolicyError/OSError); returns it with its digest.

    An empty (or whitespace-only) file is refused: it is what a file caught mid-write looks
    like, and it must neither start a proxy nor turn a running one into deny-all."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise PolicyError(f"policy file {path} is empty")
    return load_policy_file(path), _digest(data)


def load_from_env(env: Mapping[str, str]) -> tuple[CompiledPolicy, str]:
    """The Tecnativa docker-socket-proxy variables (CONTAINERS=1, POST=0, ...) as a policy."""
    spec = spec_from_tecnativa_env(env)
    policy = replace(compile_policy(spec), unallowed_hints=unallowed_hints(env))
    return policy, _digest(spec.model_dump_json().encode())


class PolicyWatcher:
    def __init__(self, path: str, holder: PolicyHolder, interval: float = POLL_INTERVAL) -> None:
        self.path = path
        self.holder = holder
        self.interval = interval
        self._signature = file_signature(path)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    def check(self) -> bool:
        """Reload when the file changed; True when a new policy was swapped in."""
        signature = file_signature(self.path)
        if signature is None or signature == self._signature:
            return False  # a missing file mid-swap keeps the old policy
        self._signature = signature
        metrics = self.holder.metrics
        try:
            policy, digest = load_from_file(self.path)
        except Exception as e:  # any failure: keep serving with the old policy
            metrics.reloads["failure"] += 1
            log_event("policy reload failed", path=self.path, error=str(e), kept=self.holder.digest)
            return False
        if digest == self.holder.digest:
            return False
        self.holder.swap(policy, digest)
        metrics.reloads["success"] += 1
        log_event(
            "policy reloaded", path=self.path, hash=digest, generation=metrics.policy_generation
        )
        return True
