"""Two edges a client could use: probing hidden container names through the daemon's 404, and
a policy file caught empty (mid-write) at start or on reload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyProcess, ProxyStartError
from tests.support.rawhttp import call, wait_status
from tests.support.waiting import wait_for

pytestmark = pytest.mark.docker

RULES: list[dict[str, Any]] = [{"allow": ["containers.*", "exec.*", "system.ping"]}]
VISIBILITY = {"containers": {"labels": {"team": "ci"}}}


@pytest.fixture(scope="module")
def hidden(dockerd: Daemon) -> Iterator[str]:
    dockerd.create("fix-seen", labels={"team": "ci"})
    dockerd.create("fix-hidden", labels={"team": "web"})
    yield "fix-hidden"
    dockerd.remove("fix-seen")
    dockerd.remove("fix-hidden")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", "/json"), ("POST", "/restart?t=0"), ("DELETE", "?force=1"), ("GET", "/logs?stdout=1")],
)
def test_missing_container_answers_like_a_hidden_one(
    dockerd: Daemon,
    fresh_proxy: Callable[..., ProxyProcess],
    hidden: str,
    method: str,
    suffix: str,
) -> None:
    p = fresh_proxy(dockerd.socket_path, RULES, visibility=VISIBILITY)
    seen = call(p.addr, method, f"/containers/{hidden}{suffix}")
    missing = call(p.addr, method, f"/containers/fix-no-such-name{suffix}")
    assert seen.status == missing.status == 403
    assert seen.message == missing.message
    assert missing.message.startswith("blocked by policy: container not visible")
    assert call(p.addr, "GET", "/containers/fix-seen/json").status == 200


def test_missing_container_without_visibility_is_the_daemons_404(
    dockerd: Daemon, fresh_proxy: Callable[..., ProxyProcess]
) -> None:
    p = fresh_proxy(dockerd.socket_path, RULES)
    r = call(p.addr, "GET", "/containers/fix-no-such-name/json")
    assert r.status == 404
    assert "fix-no-such-name" in r.message


@pytest.mark.parametrize("content", ["", " \n\n  \n"])
def test_empty_policy_file_on_reload_keeps_the_old_policy(
    dockerd: Daemon, fresh_proxy: Callable[..., ProxyProcess], content: str
) -> None:
    p = fresh_proxy(dockerd.socket_path, [{"allow": ["system.ping"]}])
    assert call(p.addr, "GET", "/_ping").status == 200
    assert p.policy_path is not None
    p.policy_path.write_text(content)  # truncated in place, as a writer mid-write leaves it
    wait_for(lambda: "policy reload failed" in p.stderr_text(), 4, "the reload failure logged")
    assert call(p.addr, "GET", "/_ping").status == 200
    p.write_policy({"spec": {"rules": [{"allow": ["system.ping", "system.version"]}]}})
    wait_status(p.addr, "/version", 200)


def test_empty_policy_file_at_start_is_an_error(dockerd: Daemon, tmp_path: Path) -> None:
    p = ProxyProcess(dockerd.socket_path, tmp_path / "px", policy="  \n")
    with pytest.raises(ProxyStartError, match="empty"):
        p.start(timeout=10)
    p.stop()
