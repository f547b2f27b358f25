"""One real node for the whole `node` suite (tests.support.nodecluster), started once per
session and stopped, by PID, at its end; the suite skips, saying why, where a part cannot
run here (binaries not built, not root, an image that cannot be built, a kernel that
refuses the node's network). What the suite measured is printed at the end of the run."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import NodeUnavailable
from tests.support.nodecluster import NodeCluster, start_node_cluster

_RESULTS: dict[str, Any] = {}


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    with contextlib.ExitStack() as stack:
        try:
            cluster = start_node_cluster(stack, tmp_path_factory.mktemp("node-cluster"))
        except NodeUnavailable as exc:
            pytest.skip(f"a real node cannot run here: {exc}")
        _RESULTS.update(cluster.results)
        cluster.results = _RESULTS
        yield cluster


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    terminalreporter.section("real node measurements")
    for key, value in _RESULTS.items():
        terminalreporter.write_line(f"{key}: {json.dumps(value)}")
    out = os.environ.get("DSO_NODE_RESULTS")
    if out:
        Path(out).write_text(json.dumps(_RESULTS, indent=2) + "\n")
