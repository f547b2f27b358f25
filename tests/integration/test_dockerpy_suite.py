"""docker-py's own integration suite, run as a user would: once straight at the test dockerd and
once through the proxy under a policy that allows `*` with every constraint relaxed. A test that
passes direct and fails through the proxy is a proxy bug.

The test tree comes from docker-py's sdist on PyPI (the 7.x sdists ship none: 6.1.3 is the
newest that does; it runs against the docker library in the venv), cached under $DSO_CACHE.
The chosen files need no registry, network or swarm: the image they ask for is the local
`bb:latest`, tagged as their TEST_IMG.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.daemons import Daemon
from tests.support.proxyproc import ProxyPool

pytestmark = pytest.mark.docker

DOCKER_PY_SDIST = "6.1.3"
TEST_IMG = ("alpine", "3.10")  # docker-py 6.1.3 tests/integration/base.py
SUITE = [
    "tests/integration/api_container_test.py",
    "tests/integration/api_exec_test.py",
    "tests/integration/api_volume_test.py",
]
# Need what this test dockerd has not got (a bridge network, a registry, swarm, a full distro
# image): they fail straight at the daemon too, so they are left out of both runs.
DESELECT = "not test_run_container_streaming and not test_create_with_init_path"

# Pass direct, fail through the proxy, each for a reason outside the routes: tracked, not hidden.
# The test fails when a new one appears.
KNOWN_DIFFERENCES = {
    # attach(stream=False): docker-py reads the upgrade head with http.client's buffered reader,
    # then reads the raw socket, so log bytes that arrived with the head are dropped on its
    # side. Straight at dockerd it fails every time too once the client reads a little late
    # (a 50 ms pause before reading the head: 10 of 10); through the proxy the head and the
    # first bytes come closer together, so it fails more often. The proxy relays every byte
    # (test_streams_hijack.py test_attach_logs_only_relays_every_byte).
    "tests.integration.api_container_test.AttachContainerTest::test_attach_no_stream",
}

RELAXED = [
    {
        "allow": ["*"],
        "create": {
            "privileged": True,
            "bindPrefixes": ["/"],
            "hostNamespaces": True,
            "capabilities": ["ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"],
            "devices": True,
            "volumesFrom": True,
            "sysctls": True,
            "securityOpt": ["seccomp=unconfined", "apparmor=unconfined", "label=disable"],
            "cgroupParent": True,
            "logDrivers": ["*"],
        },
        "exec": {"privileged": True, "users": ["*"]},
    }
]


def _cache_dir() -> Path:
    return Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "docker-py"


def docker_py_tree() -> Path:
    """The unpacked sdist (downloaded once with pip); skips, saying why, when PyPI is out of reach."""
    cache = _cache_dir()
    root = cache / f"docker-{DOCKER_PY_SDIST}"
    if (root / "tests" / "integration").is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"docker-{DOCKER_PY_SDIST}.tar.gz"
    if not sdist.exists():
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:"]
        r = subprocess.run(
            [*pip, "--no-deps", f"docker=={DOCKER_PY_SDIST}", "-d", str(cache)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if r.returncode != 0 or not sdist.exists():
            pytest.skip(f"cannot download docker-py's sdist: {r.stderr[-300:]}")
    with tarfile.open(sdist) as tar:
        tar.extractall(cache, filter="data")
    return root


def run_suite(tree: Path, docker_host: str, report: Path) -> dict[str, str]:
    """Outcome per test id ("passed", "failed", "skipped") of one run of the chosen files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    # tests/helpers.py imports paramiko for its ssh tests, none of which are chosen here.
    stubs = report.parent / "stubs"
    stubs.mkdir(exist_ok=True)
    (stubs / "paramiko.py").write_text('"""Stand-in: no chosen test uses ssh."""\n')
    env.update(
        DOCKER_HOST=docker_host,
        PYTHONPATH=f"{tree}:{stubs}",
        DOCKER_CONFIG=str(report.parent),
    )
    # The docker library in the venv, not the sdist's copy: the tree is only on PYTHONPATH for
    # its `tests` package, so move the sdist's `docker` package out of the way.
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c"]
    cmd += [str(tree / "pytest.ini"), "--rootdir", str(tree), "--timeout", "120"]
    cmd += ["-k", DESELECT, f"--junitxml={report}", *SUITE]
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=1500)
    assert report.exists(), r.stdout[-2000:] + r.stderr[-2000:]
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[test_id] = (
            "failed"
            if kinds & {"failure", "error"}
            else "skipped"
            if "skipped" in kinds
            else "passed"
        )
    return outcomes


def test_dockerpy_suite_through_a_relaxed_proxy(
    dockerd: Daemon, proxies: ProxyPool, tmp_path: Path
) -> None:
    tree = docker_py_tree()
    sdist_docker = tree / "docker"
    if sdist_docker.exists():
        sdist_docker.rename(tree / "docker-sdist-copy")
    tag = dockerd.api(
        "POST", f"/images/{dockerd.image}/tag", query={"repo": TEST_IMG[0], "tag": TEST_IMG[1]}
    )
    assert tag.status == 201, tag.body
    direct = run_suite(tree, f"unix://{dockerd.socket_path}", tmp_path / "direct.xml")
    proxy = proxies.get(dockerd.socket_path, RELAXED, visibility={"redactEnv": False})
    proxied = run_suite(tree, proxy.docker_host, tmp_path / "proxy.xml")
    passed_direct = {t for t, o in direct.items() if o == "passed"}
    print(f"docker-py {DOCKER_PY_SDIST}: {len(direct)} tests, {len(passed_direct)} pass direct")
    assert len(passed_direct) >= 40, direct
    ours = {t for t in passed_direct if proxied.get(t) != "passed"}
    print(f"through the proxy: {len(passed_direct - ours)} of them pass; differ: {sorted(ours)}")
    assert ours <= KNOWN_DIFFERENCES, f"pass direct, fail through the proxy: {sorted(ours)}"
