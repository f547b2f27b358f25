"""Session fixtures: private engines (dockerd, podman) and proxies in front of them.

Engines start once per session (lazily: a run that selects only docker tests never starts
podman). Proxies are pooled per (engine, policy) so that the many tests sharing a policy
share one process; a test that changes or kills its proxy asks for ``fresh_proxy``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# `tests` has no __init__.py, so pytest puts tests/ (not the repository root) on sys.path;
# the suites import their helpers as `tests.support.*`, as `python -m tests.support...` does.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support.daemons import (  # noqa: E402
    Daemon,
    DaemonUnavailable,
    have_docker_cli,
    start_dockerd,
    start_podman,
)
from tests.support.image import ImageUnavailable, build_image  # noqa: E402
from tests.support.proxyproc import (  # noqa: E402
    ProxyPool,
    ProxyProcess,
    ProxyStartError,
    policy_document,
)


def _start_or_skip(starter: Callable[[], Daemon], what: str) -> Iterator[Daemon]:
    try:
        d = starter()
    except DaemonUnavailable as e:
        print(f"\n[skip] {what}: {e}")
        pytest.skip(f"{what} unavailable: {e}")
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Daemon]:
    yield from _start_or_skip(start_dockerd, "dockerd")


@pytest.fixture(scope="session")
def podman() -> Iterator[Daemon]:
    yield from _start_or_skip(start_podman, "podman")


@pytest.fixture(scope="session", params=["docker", "podman"])
def daemon(request: pytest.FixtureRequest) -> Daemon:
    """The suites that must hold for both engines take this one."""
    name = "dockerd" if request.param == "docker" else "podman"
    d: Daemon = request.getfixturevalue(name)
    return d


@pytest.fixture(scope="session")
def image_daemon() -> Iterator[Daemon]:
    """A dockerd of its own for the image build: builds on vfs are big, the shared one stays
    lean. Started only by the suites that use the image."""
    if not have_docker_cli():
        pytest.skip("docker CLI not installed")
    yield from _start_or_skip(start_dockerd, "dockerd (image build)")


@pytest.fixture(scope="session")
def proxy_image(image_daemon: Daemon) -> str:
    """The image, built once per session the way `make image` builds it, in image_daemon."""
    try:
        return build_image(image_daemon)
    except ImageUnavailable as e:
        pytest.skip(f"cannot build the image here: {e}")


@pytest.fixture(scope="session")
def docker_cli_available() -> None:
    if not have_docker_cli():
        pytest.skip("docker CLI not installed")


@pytest.fixture(scope="session")
def proxies() -> Iterator[ProxyPool]:
    root = Path(tempfile.mkdtemp(prefix="dso-px-", dir="/tmp"))
    pool = ProxyPool(root)
    try:
        yield pool
    finally:
        pool.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """Start a proxy owned by this test alone (reload, daemon-down, audit tests)."""
    started: list[ProxyProcess] = []

    def make(
        socket_path: str,
        rules: list[dict[str, Any]] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        policy_path: Path | None = None,
        **spec: Any,
    ) -> ProxyProcess:
        policy = policy_document(rules, **spec) if rules is not None else None
        work = tmp_path / f"proxy{len(started)}"
        p = ProxyProcess(socket_path, work, policy=policy, env=env, policy_path=policy_path)
        started.append(p)
        try:
            p.start()
        except ProxyStartError as e:
            pytest.fail(f"proxy did not start: {e}")
        return p

    try:
        yield make
    finally:
        for p in started:
            p.stop()


@pytest.fixture(scope="session")
def named_containers(daemon: Daemon) -> dict[str, str]:
    """Containers 'web' and 'db' running on the engine: name -> full ID."""
    return {
        "web": daemon.create("web", labels={"app": "web", "com.docker.compose.project": "shop"}),
        "db": daemon.create("db", labels={"app": "db", "com.docker.compose.project": "other"}),
    }


def pytest_configure(config: pytest.Config) -> None:
    # A compiled module that no longer matches its source would be what every test runs.
    sys.path.insert(0, str(Path(_ROOT) / "hack"))
    import build_compiled

    if build_compiled.stale():
        raise pytest.UsageError(
            "the compiled proxy modules do not match their sources: run `make compiled` "
            "(or `make clean-compiled` to test the pure-Python build)"
        )


def pytest_report_header(config: pytest.Config) -> list[str]:
    import docker_socket_operator.proxy.server as server

    build = "compiled (mypyc)" if server.__file__.endswith(".so") else "pure Python"
    return [
        f"engines: dockerd={shutil.which('dockerd')} podman={shutil.which('podman')} uid={os.geteuid()}",
        f"proxy request path: {build}",
    ]
