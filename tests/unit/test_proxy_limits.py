"""Connection caps and timeout settings (pure bookkeeping; the I/O is in the integration suite)."""

from __future__ import annotations

import pytest

from docker_socket_operator.proxy.limits import ConnectionCounter, Limits


def test_per_client_cap_leaves_room_for_other_clients() -> None:
    c = ConnectionCounter(Limits(max_connections=10, max_connections_per_client=2))
    assert c.admit("10.0.0.1") is None
    assert c.admit("10.0.0.1") is None
    refused = c.admit("10.0.0.1")
    assert refused is not None and "from 10.0.0.1 (limit 2 per client)" in refused
    assert c.admit("10.0.0.2") is None
    assert c.total == 3  # a refused connection is not counted
    c.release("10.0.0.1")
    assert c.admit("10.0.0.1") is None


def test_total_cap_covers_unix_clients_too() -> None:
    c = ConnectionCounter(Limits(max_connections=2, max_connections_per_client=1))
    assert c.admit(None) is None
    assert c.admit(None) is None  # Unix-socket peers share only the total cap
    refused = c.admit("10.0.0.1")
    assert refused is not None and "too many connections to the proxy" in refused
    c.release(None)
    c.release(None)
    assert c.total == 0 and c.per_client == {}


def test_per_client_cap_zero_means_none() -> None:
    c = ConnectionCounter(Limits(max_connections=3, max_connections_per_client=0))
    assert [c.admit("10.0.0.1") for _ in range(3)] == [None, None, None]
    assert c.per_client == {}
    c.release("10.0.0.1")
    assert c.total == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"head_timeout": 0},
        {"idle_timeout": -1},
        {"body_timeout": 0},
        {"max_connections": 0},
        {"max_connections_per_client": -1},
    ],
)
def test_nonsense_limits_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**bad).check()  # type: ignore[arg-type]


def test_deadlines_are_checked_often_enough() -> None:
    assert Limits().tick == 1.0
    assert Limits(head_timeout=1, idle_timeout=1).tick == 0.25
    assert Limits(head_timeout=0.01).tick == 0.05


def test_proxy_refuses_nonsense_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from docker_socket_operator.cli import main

    assert main(["proxy", "--listen", "127.0.0.1:0", "--head-timeout", "0"]) == 2
    assert "head-timeout must be a positive number of seconds" in capsys.readouterr().err
