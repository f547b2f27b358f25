"""Container images for a real test node, made without any registry.

Three images, each saved as a ``docker save`` archive that ``ctr images import`` reads:

- the proxy image, built from this checkout exactly as ``make image`` builds it
  (hack/image/build.sh against a private dockerd);
- ``dso.local/client:1``: busybox-static plus the machine's docker CLI (and the two
  libraries it links), the client a user's pod would run;
- ``dso.local/pause:1``: busybox-static sleeping, containerd's ``sandbox_image``.

Archives are cached under ``$DSO_CACHE/node-images`` by a digest of their inputs (for the
proxy: every file the image is built from), so a second session imports without building.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.support import image
from tests.support.daemons import Daemon, DaemonUnavailable, find_busybox, start_dockerd
from tests.support.image import build_image

REPO = Path(__file__).resolve().parents[2]

PROXY_IMAGE = "dso.local/docker-socket-operator:test"
CLIENT_IMAGE = "dso.local/client:1"
PAUSE_IMAGE = "dso.local/pause:1"
CLIENT_APPLETS = ("sh", "sleep", "cat", "echo", "wget", "nc", "ls", "id", "touch", "timeout")


class ImageUnavailable(RuntimeError):
    """An image cannot be made here; the message says why."""


@dataclass(frozen=True)
class NodeImages:
    proxy: Path
    client: Path
    pause: Path

    def archives(self) -> tuple[Path, ...]:
        return (self.pause, self.client, self.proxy)


def cache_dir() -> Path:
    return Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "node-images"


def _digest(paths: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        h.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _proxy_inputs() -> list[Path]:
    files = [REPO / "Dockerfile", REPO / "pyproject.toml", *sorted((REPO / "hack/image").glob("*"))]
    for path in (REPO / "operator").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
            files.append(path)
    return files


def _docker(d: Daemon, *args: str, stdin: bytes | None = None, timeout: float = 600) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=d.host, DOCKER_CONFIG="/tmp/dso-test-docker-config")
    proc = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise ImageUnavailable(f"docker {args[0]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _rootfs(dest: Path, with_docker_cli: bool) -> Path:
    root = dest.parent / "rootfs"
    for sub in ("bin", "etc", "tmp", "lib64", "lib/x86_64-linux-gnu", "usr/bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(find_busybox(), root / "bin" / "busybox")
    for applet in CLIENT_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    if with_docker_cli:
        docker = shutil.which("docker")
        if docker is None:
            raise ImageUnavailable("docker CLI not installed")
        shutil.copy2(docker, root / "usr" / "bin" / "docker")
        # A dynamically linked CLI (Debian's) needs its libraries: copy exactly what ldd
        # names (a static one makes ldd fail and needs none).
        ldd = subprocess.run(["ldd", docker], capture_output=True, text=True, check=False).stdout
        for line in ldd.splitlines():
            parts = line.split()
            lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if lib.startswith("/"):
                target = root / lib.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.realpath(lib), target)
    with tarfile.open(dest, "w") as tar:
        tar.add(root, arcname=".")
    return dest


def _busybox_image(d: Daemon, tag: str, cmd: str, with_docker_cli: bool, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="dso-ni-", dir="/tmp"))
    try:
        tar = _rootfs(work / "rootfs.tar", with_docker_cli)
        _docker(
            d,
            "import",
            "--change",
            "ENV PATH=/usr/bin:/bin",
            "--change",
            f"CMD {cmd}",
            str(tar),
            tag,
        )
        _docker(d, "save", "-o", str(out), tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _proxy_image(d: Daemon, out: Path) -> None:
    try:
        build_image(d, PROXY_IMAGE)
    except image.ImageUnavailable as exc:
        raise ImageUnavailable(f"the proxy image cannot be built here: {exc}") from exc
    _docker(d, "save", "-o", str(out), PROXY_IMAGE)


def node_images() -> NodeImages:
    """The three archives, from the cache or built now on a private dockerd."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    busybox = Path(find_busybox())
    docker_cli = Path(shutil.which("docker") or "/usr/bin/docker")
    wanted = NodeImages(
        proxy=cache / f"proxy-{_digest(_proxy_inputs())}.tar",
        client=cache / f"client-{_digest([busybox, docker_cli, Path(__file__)])}.tar",
        pause=cache / f"pause-{_digest([busybox, Path(__file__)])}.tar",
    )
    pinned = os.environ.get("DSO_NODE_PROXY_ARCHIVE")
    if pinned:
        # Iterating on the node harness itself: reuse a proxy archive built earlier.
        wanted = NodeImages(proxy=Path(pinned), client=wanted.client, pause=wanted.pause)
    missing = [p for p in wanted.archives() if not p.exists()]
    if not missing:
        return wanted
    try:
        d = start_dockerd(import_image=False)
    except DaemonUnavailable as exc:
        raise ImageUnavailable(f"no dockerd to build the node images: {exc}") from exc
    try:
        for path in missing:
            tmp = path.with_suffix(".tmp")
            if path == wanted.pause:
                # sleep as PID 1 ignores SIGTERM; containerd SIGKILLs sandboxes anyway.
                _busybox_image(d, PAUSE_IMAGE, '["sleep", "2147483647"]', False, tmp)
            elif path == wanted.client:
                _busybox_image(d, CLIENT_IMAGE, '["sleep", "2147483647"]', True, tmp)
            else:
                _proxy_image(d, tmp)
            tmp.rename(path)
    finally:
        d.stop()
    # Older builds go once they are a day old (a concurrent session may still import one).
    for stale in cache.glob("*.tar"):
        if stale not in wanted.archives() and time.time() - stale.stat().st_mtime > 86400:
            stale.unlink(missing_ok=True)
    return wanted
