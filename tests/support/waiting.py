"""The one way tests wait: on a condition with a deadline, never a fixed sleep.

A fixed sleep is either too short (the test flakes on a loaded machine) or too long (every
run pays for the worst case), and it says nothing about what is awaited. So tests wait here:

- `wait_for`: something must *become* true; returns as soon as it is, fails at the deadline
  naming what was awaited.
- `holds_for`: something must *stay* true for a window ("nothing was written", "no container
  was created"); it is checked all through the window, so a breach fails at once and names
  what broke, instead of a sleep followed by one look at the end.
- `settled`: a value must stop changing ("the last status writes landed") before it is taken
  as a baseline; returns as soon as it has been quiet long enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `predicate()` until it returns something truthy; return that.

    Exceptions from the predicate count as "not yet" (kubectl hiccups while the apiserver
    restarts, a socket not yet listening); the last one is named in the TimeoutError.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:
            last_exc = exc
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")


def holds_for(predicate: Callable[[], Any], seconds: float, what: str) -> None:
    """Check `predicate()` all through a window of `seconds`, and once at its end.

    For negative checks: the window gives anything that slipped through time to show, and
    the first falsy result (or exception) fails at once with an AssertionError naming `what`.
    """
    deadline = time.monotonic() + seconds
    while True:
        last = time.monotonic() >= deadline
        if not predicate():
            raise AssertionError(f"no longer true (within {seconds}s): {what}")
        if last:
            return
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def settled(read: Callable[[], T], quiet: float, timeout: float, what: str) -> T:
    """Call `read()` until its value has stayed equal for `quiet` seconds; return it.

    For taking a baseline once the last writes have landed: a fixed sleep either misses a
    late write or waits longer than needed. TimeoutError if it keeps changing for `timeout`.
    """
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while True:
        now = time.monotonic()
        if now - since >= quiet:
            return value
        if now >= deadline:
            raise TimeoutError(f"{what} still changing after {timeout}s (last: {value!r})")
        time.sleep(0.2)
        current = read()
        if current != value:
            value, since = current, time.monotonic()
