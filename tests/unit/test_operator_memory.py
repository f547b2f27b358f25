"""The operator gives freed heap memory back after a burst of work (controller/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from docker_socket_operator.controller.memory import Trimmer, libc_trim


def test_it_trims_once_after_work_and_not_while_idle() -> None:
    calls: list[int] = []
    trimmer = Trimmer(lambda: calls.append(1))
    assert not trimmer.tick()  # nothing happened yet
    trimmer.touch()
    trimmer.touch()
    assert trimmer.tick()
    assert not trimmer.tick()  # idle since: nothing to give back
    trimmer.touch()
    assert trimmer.tick()
    assert len(calls) == trimmer.trims == 2


def test_without_malloc_trim_it_does_nothing() -> None:
    trimmer = Trimmer(None)
    trimmer.touch()
    assert not trimmer.tick()


def test_a_burst_freed_is_given_back_to_the_system() -> None:
    # What the operator sees after a cold start: many large objects decoded and dropped
    # between small ones that stay. The heap keeps the freed pages until trimmed.
    if libc_trim() is None:
        pytest.skip("the C library has no malloc_trim (not glibc)")
    script = textwrap.dedent(
        """
        from docker_socket_operator.controller.memory import libc_trim

        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

        keep, drop = [], []
        for i in range(20000):
            drop.append(b"x" * 8000 + str(i).encode())
            keep.append(b"k" * 600 + str(i).encode())
        del drop
        before = rss()
        trim = libc_trim()
        trim()
        print(before, rss())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    before, after = (int(v) for v in out.split())
    assert before - after > 100 * 1024, f"RSS {before} KiB before the trim, {after} after"
