"""Private container engines for the integration tests: a real dockerd and a real
``podman system service``, each on its own unix socket under a short temporary
directory, with a tiny busybox image (``bb:latest``) imported into it.

Nothing here fakes an engine: when a binary is missing or the daemon does not come
up, :class:`DaemonUnavailable` carries the reason and the fixtures skip with it.

Tests use :meth:`Daemon.api` to look at the daemon *directly* (not through the
proxy) so that a security test can check the side effect of what it tried.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for

BUSYBOX_CANDIDATES = ("/usr/bin/busybox", "/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "yes", "head", "env", "ls", "true")
DOCKER_IMAGE = "bb:latest"
PODMAN_IMAGE = "localhost/bb:latest"
# Every container the tests make carries this label, so teardown finds them all.
TEST_LABEL = "dso.test"


class DaemonUnavailable(RuntimeError):
    """The engine cannot run here; the message says why (the fixture skips with it)."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the daemon's own API socket)."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Daemon:
    """A running engine: ``kind`` is "docker" or "podman"."""

    kind: str
    workdir: Path
    socket_path: str
    image: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    storage_args: list[str] = field(default_factory=list)

    # -- direct API access (bypasses the proxy) -------------------------------------------
    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        raw_body: bytes | None = None,
    ) -> ApiResponse:
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        conn = UnixHTTPConnection(self.socket_path, timeout=timeout)
        try:
            headers = {"Host": "docker"}
            data: bytes | None = raw_body
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            return ApiResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        finally:
            conn.close()

    def ping(self) -> bool:
        try:
            return self.api("GET", "/_ping", timeout=2).status == 200
        except OSError:
            return False

    def inspect(self, ref: str) -> dict[str, Any] | None:
        r = self.api("GET", f"/containers/{ref}/json")
        if r.status == 404:
            return None
        assert r.status == 200, (r.status, r.body)
        doc: dict[str, Any] = r.json()
        return doc

    def containers(self, all_: bool = True) -> list[dict[str, Any]]:
        r = self.api("GET", "/containers/json", query={"all": "1" if all_ else "0"})
        assert r.status == 200, r.body
        items: list[dict[str, Any]] = r.json()
        return items

    def privileged_containers(self) -> list[str]:
        """IDs of every container on the daemon that runs privileged: a security test's
        "nothing got through" check."""
        found = []
        for c in self.containers():
            doc = self.inspect(c["Id"])
            if doc and (doc.get("HostConfig") or {}).get("Privileged"):
                found.append(c["Id"])
        return found

    def create(
        self,
        name: str,
        cmd: list[str] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        start: bool = True,
        tty: bool = False,
        open_stdin: bool = False,
        env: list[str] | None = None,
    ) -> str:
        """Create (and start) a container straight on the daemon; returns its full ID."""
        self.remove(name)
        body: dict[str, Any] = {
            "Image": self.image,
            "Cmd": cmd or ["sleep", "3600"],
            "Labels": {TEST_LABEL: "1", **(labels or {})},
            "Tty": tty,
            "OpenStdin": open_stdin,
            "StopSignal": "SIGKILL",
        }
        if env is not None:
            body["Env"] = env
        r = self.api("POST", "/containers/create", body, query={"name": name})
        assert r.status == 201, (r.status, r.body)
        cid: str = r.json()["Id"]
        if start:
            s = self.api("POST", f"/containers/{cid}/start")
            assert s.status in (204, 304), (s.status, s.body)
        return cid

    def remove(self, ref: str) -> None:
        self.api("DELETE", f"/containers/{ref}", query={"force": "1", "v": "1"})

    def remove_all_containers(self) -> None:
        with contextlib.suppress(OSError, AssertionError):
            for c in self.containers():
                self.remove(c["Id"])

    def exec_ids(self, ref: str) -> frozenset[str]:
        """The container's exec instances. Order is random and finished ones are garbage
        collected, so "nothing was created" reads `exec_ids(c) <= before`."""
        doc = self.inspect(ref) or {}
        return frozenset(doc.get("ExecIDs") or [])

    # -- the docker CLI pointed at the daemon directly ------------------------------------
    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def remove_all_networks(self) -> None:
        """The networks tests made: dockerd leaves a user network's bridge on the host after
        it exits, and leaked bridges use up the address pools of every later daemon."""
        with contextlib.suppress(OSError, AssertionError, ValueError):
            r = self.api("GET", "/networks", timeout=10)
            for net in r.json() if r.status == 200 else []:
                if net.get("Name") not in ("bridge", "host", "none", "podman"):
                    self.api("DELETE", f"/networks/{net['Id']}", timeout=10)

    def stop(self) -> None:
        self.remove_all_containers()
        self.remove_all_networks()
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        _kill_leftovers(self.workdir)
        _unmount_below(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)


def find_busybox() -> str:
    for cand in BUSYBOX_CANDIDATES:
        if os.path.exists(cand) and _is_static(cand):
            return cand
    raise DaemonUnavailable("no static busybox (apt-get install busybox-static)")


def _is_static(path: str) -> bool:
    # A dynamically linked busybox would need libc inside the image; check the ELF for an
    # interpreter segment instead of trusting the file name.
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return b"/lib64/ld-linux" not in head and b"/lib/ld-linux" not in head


def make_rootfs_tar(dest: Path) -> Path:
    """A tar of a rootfs holding /bin/busybox and its applet links (plus /etc, /tmp)."""
    busybox = find_busybox()
    root = dest.parent / "rootfs"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    with tarfile.open(dest, "w") as tar:
        tar.add(root, arcname=".")
    return dest


def _short_tmpdir(prefix: str) -> Path:
    # unix socket paths are limited to ~107 bytes: stay directly under /tmp.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _wait_ping(d: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.process is not None and d.process.poll() is not None:
            break
        if os.path.exists(d.socket_path) and d.ping():
            return
        time.sleep(0.1)
    log = d.log_path.read_text(errors="replace")[-2000:] if d.log_path else ""
    d.stop()
    raise DaemonUnavailable(f"{d.kind} did not answer _ping within {timeout}s; log tail:\n{log}")


def start_dockerd(import_image: bool = True) -> Daemon:
    """A private dockerd; ``import_image=False`` for a throwaway one (a test that stops it)."""
    if shutil.which("dockerd") is None:
        raise DaemonUnavailable("dockerd not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise DaemonUnavailable("dockerd needs root")
    work = _short_tmpdir("dso-d-")
    sock = str(work / "docker.sock")
    log = work / "dockerd.log"
    cmd = [
        "dockerd",
        "--host", f"unix://{sock}",
        "--data-root", str(work / "root"),
        "--exec-root", str(work / "exec"),
        "--pidfile", str(work / "pid"),
        "--iptables=false",
        "--bridge=none",
        "--storage-driver=vfs",
    ]  # fmt: skip
    with log.open("wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    d = Daemon("docker", work, sock, DOCKER_IMAGE, proc, log)
    _wait_ping(d, 30)
    if not import_image:
        return d
    rootfs = make_rootfs_tar(_short_tmpdir("dso-img-") / "rootfs.tar")
    with rootfs.open("rb") as f:
        r = d.api(
            "POST",
            "/images/create",
            query={"fromSrc": "-", "repo": "bb", "tag": "latest"},
            raw_body=f.read(),
            timeout=120,
        )
    shutil.rmtree(rootfs.parent, ignore_errors=True)
    if r.status != 200 or b'"error' in r.body:
        d.stop()
        raise DaemonUnavailable(f"docker import failed: {r.status} {r.body[-500:]!r}")
    return d


PODMAN_CONF = """[containers]
# Without this podman 4.3 in a container fails with "error setting rlimit type 7".
default_ulimits = []
[engine]
# No journald here; file events and file locks keep this instance apart from any other podman.
events_logger = "file"
lock_type = "file"
tmp_dir = "{tmp}"
"""


def start_podman() -> Daemon:
    if shutil.which("podman") is None:
        raise DaemonUnavailable("podman not installed (apt-get install podman)")
    if os.geteuid() != 0:
        raise DaemonUnavailable("the podman tests run rootful")
    rootfs = make_rootfs_tar(_short_tmpdir("dso-img-") / "rootfs.tar")
    work = _short_tmpdir("dso-p-")
    sock = str(work / "podman.sock")
    conf = work / "containers.conf"
    conf.write_text(PODMAN_CONF.format(tmp=work / "tmp"))
    env = {"CONTAINERS_CONF": str(conf)}
    storage = [
        "--root", str(work / "root"),
        "--runroot", str(work / "run"),
        "--storage-driver", "vfs",
    ]  # fmt: skip
    log = work / "podman.log"
    with log.open("wb") as logf:
        proc = subprocess.Popen(
            ["podman", *storage, "system", "service", "--time=0", f"unix://{sock}"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    d = Daemon("podman", work, sock, PODMAN_IMAGE, proc, log, env, storage)
    _wait_ping(d, 30)
    imp = subprocess.run(
        ["podman", *storage, "import", "-q", str(rootfs), PODMAN_IMAGE],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
    )
    shutil.rmtree(rootfs.parent, ignore_errors=True)
    if imp.returncode != 0:
        d.stop()
        raise DaemonUnavailable(f"podman import failed: {imp.stderr.decode(errors='replace')}")
    return d


def _pids_under(workdir: Path) -> Iterator[int]:
    """Processes whose command line names our engine's private state directories (conmon,
    containerd, shims, podman cleanup): ours and only ours, so teardown ends them by id.
    The socket path is deliberately not a needle: a proxy pointed at it is not ours to kill."""
    yield from pids_naming([f"{workdir}/{sub}".encode() for sub in ("root", "exec", "run", "tmp")])


def pids_naming(needles: list[bytes]) -> Iterator[int]:
    """Processes (not this one) whose command line contains one of ``needles``."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            yield int(entry)


def _kill_leftovers(workdir: Path) -> None:
    for pid in list(_pids_under(workdir)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _unmount_below(workdir: Path) -> None:
    # shm and overlay mounts under the data root survive a killed daemon; rmtree needs them gone.
    prefix = str(workdir) + "/"
    try:
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for mnt in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)


def docker_cli(
    host: str, *args: str, input_: bytes | None = None, timeout: float = 60.0, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the real docker CLI against ``host`` (tcp://127.0.0.1:PORT for the proxy)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = host
    env["DOCKER_CONFIG"] = "/tmp/dso-test-docker-config"
    env["DOCKER_CLI_HINTS"] = "false"
    proc = subprocess.run(
        ["docker", *args], input=input_, capture_output=True, env=env, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
        )
    return proc


def have_docker_cli() -> bool:
    return shutil.which("docker") is not None


class LineReader:
    """A docker CLI process whose stdout lines arrive on a queue (no blocking reads)."""

    def __init__(self, host: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=host, DOCKER_CONFIG="/tmp/dso-test-docker-config")
        self.proc = subprocess.Popen(
            ["docker", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def drain(self) -> list[str]:
        """Move the lines read so far onto `seen`; return `seen`."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def wait_for(self, needle: str, timeout: float) -> bool:
        """True once a line holds `needle`; False if the process ends or `timeout` passes first."""

        def found_or_ended() -> str | None:
            if any(needle in line for line in self.drain()):
                return "found"
            if self.proc.poll() is not None and self.lines.empty():
                return "ended"
            return None

        with contextlib.suppress(TimeoutError):
            wait_for(found_or_ended, timeout, f"a line with {needle!r}")
        return any(needle in line for line in self.drain())

    def stop(self) -> str:
        # SIGKILL, not SIGTERM: `docker attach` would forward a SIGTERM to the container.
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")
