"""The real proxy CLI as a subprocess: ``docker-socket-operator proxy --listen 127.0.0.1:0``.

The proxy prints one JSON line on stderr when it is ready, with the addresses it bound;
:class:`ProxyProcess` waits for it and exposes the URL, the DOCKER_HOST for the docker
CLI and docker-py, the audit log and the metrics URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from tests.support.waiting import wait_for

ADDR = re.compile(r"^(?:tcp://|http://)?(127\.0\.0\.1|0\.0\.0\.0|\[?::1?\]?|localhost):(\d+)/?$")
TECNATIVA_VARS = [
    "EVENTS",
    "PING",
    "VERSION",
    "AUTH",
    "BUILD",
    "COMMIT",
    "CONFIGS",
    "CONTAINERS",
    "DISTRIBUTION",
    "EXEC",
    "GRPC",
    "IMAGES",
    "INFO",
    "NETWORKS",
    "NODES",
    "PLUGINS",
    "POST",
    "SECRETS",
    "SERVICES",
    "SESSION",
    "SWARM",
    "SYSTEM",
    "TASKS",
    "VOLUMES",
    "ALLOW_START",
    "ALLOW_STOP",
    "ALLOW_RESTARTS",
    "DISABLE_IPV6",
    "LOG_LEVEL",
]


def proxy_command() -> list[str]:
    """The installed console script next to the interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("docker-socket-operator")
    if script.exists():
        return [str(script)]
    found = shutil.which("docker-socket-operator")
    if found:
        return [found]
    return [sys.executable, "-m", "docker_socket_operator.cli"]


def policy_document(rules: list[dict[str, Any]] | dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A whole DockerSocketPolicy document from rules (or a bare spec dict)."""
    body = rules if isinstance(rules, dict) else {"rules": rules, **spec}
    return {
        "apiVersion": "dockersocket.io/v1alpha1",
        "kind": "DockerSocketPolicy",
        "metadata": {"name": "test"},
        "spec": body,
    }


def _find_addresses(obj: Any, key: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            found += _find_addresses(v, f"{key}.{k}".lower())
    elif isinstance(obj, list):
        for v in obj:
            found += _find_addresses(v, key)
    elif isinstance(obj, str) and ADDR.match(obj):
        found.append((key, obj))
    return found


def _host_port(addr: str) -> tuple[str, int]:
    m = ADDR.match(addr)
    assert m, addr
    host = m.group(1).strip("[]")
    if host in ("0.0.0.0", "", ":"):
        host = "127.0.0.1"
    return host, int(m.group(2))


class ProxyStartError(RuntimeError):
    pass


class ProxyProcess:
    """One running proxy. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        socket_path: str,
        workdir: Path,
        *,
        policy: Mapping[str, Any] | str | None = None,
        env: Mapping[str, str] | None = None,
        audit: bool = True,
        metrics: bool = True,
        policy_path: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.policy_path: Path | None = policy_path
        if policy is not None and policy_path is None:
            self.policy_path = workdir / "policy.yaml"
        if policy is not None and self.policy_path is not None:
            self.write_policy(policy)
        self.env = dict(env or {})
        self.audit_path: Path | None = workdir / "audit.log" if audit else None
        self.metrics = metrics
        self.extra_args = list(extra_args or [])
        self.stderr_path = workdir / "proxy.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.metrics_addr: tuple[str, int] | None = None
        self.ready_info: dict[str, Any] = {}

    # -- policy file ------------------------------------------------------------------------
    def write_policy(self, policy: Mapping[str, Any] | str, path: Path | None = None) -> Path:
        """Atomically replace the policy file (write + rename, as an editor would)."""
        target = path or self.policy_path
        assert target is not None
        text = policy if isinstance(policy, str) else yaml.safe_dump(dict(policy), sort_keys=False)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
        return target

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> Self:
        args = [*proxy_command(), "proxy", "--listen", "127.0.0.1:0", "--socket", self.socket_path]
        if self.policy_path is not None:
            args += ["--policy", str(self.policy_path)]
        if self.metrics:
            args += ["--metrics-listen", "127.0.0.1:0"]
        if self.audit_path is not None:
            args += ["--audit-log", str(self.audit_path)]
        args += self.extra_args
        # Only the variables the test sets: a Tecnativa variable leaking in from the
        # outer environment would change the policy under test.
        base = {
            k: v for k, v in os.environ.items() if k not in TECNATIVA_VARS and k != "SOCKET_PATH"
        }
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**base, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProxyStartError(
                    f"proxy exited with {self.proc.returncode}: {self.stderr_text()[-3000:]}"
                )
            if self._parse_ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise ProxyStartError(f"proxy not ready within {timeout}s: {self.stderr_text()[-3000:]}")

    def _parse_ready(self) -> bool:
        for line in self.stderr_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                info = json.loads(line)
            except ValueError:
                continue
            addrs = _find_addresses(info)
            listen = [a for k, a in addrs if "metric" not in k]
            metrics = [a for k, a in addrs if "metric" in k]
            if not listen:
                continue
            self.ready_info = info
            self.host, self.port = _host_port(listen[0])
            if metrics:
                self.metrics_addr = _host_port(metrics[0])
            return True
        return False

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what clients use ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def docker_host(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def docker_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host}

    @property
    def metrics_url(self) -> str:
        host, port = self.metrics_addr or (self.host, self.port)
        return f"http://{host}:{port}"

    def audit_mark(self) -> int:
        """How many audit lines exist now; pass to audit_lines(since=...)."""
        return len(self.audit_lines())

    def audit_lines(self, since: int = 0) -> list[dict[str, Any]]:
        if self.audit_path is None or not self.audit_path.exists():
            return []
        out: list[dict[str, Any]] = []
        for line in self.audit_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    out.append(doc)
        return out[since:]

    def wait_audit(self, pred: Any, since: int = 0, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Audit lines after ``since`` once one satisfies ``pred`` (the log is written async)."""
        with contextlib.suppress(TimeoutError):  # the caller asserts on what it gets
            wait_for(lambda: any(pred(x) for x in self.audit_lines(since)), timeout, "audit line")
        return self.audit_lines(since)

    def get(self, path: str, timeout: float = 10.0, base: str | None = None) -> tuple[int, bytes]:
        """A plain GET (health, metrics, API) returning status and body, errors included."""
        try:
            with urllib.request.urlopen((base or self.url) + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


class ProxyPool:
    """One proxy per (engine socket, policy text): started on first use, stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, ProxyProcess] = {}

    def get(
        self,
        socket_path: str,
        rules: list[dict[str, Any]] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **spec: Any,
    ) -> ProxyProcess:
        policy = policy_document(rules, **spec) if rules is not None else None
        key = json.dumps([socket_path, policy, dict(env or {})], sort_keys=True)
        proc = self.procs.get(key)
        if proc is not None and proc.alive():
            return proc
        workdir = Path(tempfile.mkdtemp(prefix="px-", dir=self.root))
        proc = ProxyProcess(socket_path, workdir, policy=policy, env=env)
        proc.start()
        self.procs[key] = proc
        return proc

    def stop_all(self) -> None:
        for p in self.procs.values():
            p.stop()
