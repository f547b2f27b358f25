"""The project's container image, built from this checkout exactly as `make image` builds it
(hack/image/build.sh: debootstrap base, wheels, `docker build --network none`) in a given
dockerd. Slow the first time (debootstrap); with $DSO_CACHE warm it is the import of the cached
rootfs plus one offline `docker build`."""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
from pathlib import Path

from tests.support.daemons import Daemon

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "image" / "build.sh"
EX_UNAVAILABLE = 77  # build.sh: "cannot build the image on this machine"


class ImageUnavailable(RuntimeError):
    """build.sh cannot run here (no debootstrap, no Debian mirror, ...): the reason."""


def project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


TAG = f"docker-socket-operator:{project_version()}"


def build_image(daemon: Daemon, tag: str = TAG) -> str:
    """Build `tag` in `daemon`; ImageUnavailable when build.sh says it cannot run here,
    AssertionError (with the log) when the build itself fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = daemon.host
    env["DOCKER_CONFIG"] = "/tmp/dso-test-docker-config"
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), tag],
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    log = proc.stderr
    if proc.returncode == EX_UNAVAILABLE:
        reason = [line for line in log.splitlines() if "unavailable:" in line]
        raise ImageUnavailable((reason or [log[-300:]])[-1])
    assert proc.returncode == 0, f"build.sh failed ({proc.returncode}):\n{log[-4000:]}"
    # The script's own timings (debootstrap, import, build) and the total, for the report.
    for line in log.splitlines():
        if line.startswith("[image]"):
            print(line)
    print(f"[image] build.sh total {time.monotonic() - start:.0f}s")
    return tag
