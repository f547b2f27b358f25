"""Build the request path's mypyc modules (setup.py) in place, next to their sources.

    python hack/build_compiled.py          build, or reuse a build of the same sources
    python hack/build_compiled.py --check  exit 1 when compiled modules are present but stale
    python hack/build_compiled.py --clean  remove them: the proxy runs as pure Python

Python imports an extension module before a source file of the same name, so a compiled
module that no longer matches its source would run old code: the stamp records the digest of
the sources it was built from, and the tests refuse to run on a stale one. Builds are kept in
$DSO_CACHE/mypyc by that digest (a fresh clone reuses one instead of compiling for a minute).
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = ROOT / "operator"
STAMP = PACKAGE_ROOT / ".compiled"
SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))


def compiled_sources() -> list[Path]:
    """The MODULES of setup.py, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "MODULES" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            return [PACKAGE_ROOT / "docker_socket_operator" / f"{n}.py" for n in names]
    raise SystemExit("setup.py has no MODULES list")


def digest() -> str:
    import mypy.version

    h = hashlib.sha256()
    h.update(f"{sys.version} {SUFFIX} mypy {mypy.version.__version__}\n".encode())
    for path in [ROOT / "setup.py", *compiled_sources()]:
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:20]


def built_files() -> list[Path]:
    """Every extension module in the package tree (the modules and mypyc's shared library)."""
    return sorted(PACKAGE_ROOT.rglob(f"*{SUFFIX}"))


def clean() -> None:
    for path in built_files():
        path.unlink()
    STAMP.unlink(missing_ok=True)


def stale() -> bool:
    if not built_files():
        return False
    try:
        import mypy.version  # noqa: F401
    except ImportError:
        return True
    return not STAMP.exists() or STAMP.read_text().strip() != digest()


def build() -> int:
    key = digest()
    if STAMP.exists() and STAMP.read_text().strip() == key and built_files():
        print(f"compiled modules up to date ({key})")
        return 0
    clean()
    cache = Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "mypyc" / key
    if (cache / ".complete").exists():
        for path in cache.rglob(f"*{SUFFIX}"):
            target = PACKAGE_ROOT / path.relative_to(cache)
            shutil.copy2(path, target)
        STAMP.write_text(key + "\n")
        print(f"compiled modules from the cache ({key})")
        return 0
    env = {**os.environ, "DSO_COMPILE": "1"}
    r = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        clean()
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        print("mypyc build failed: the proxy runs as pure Python", file=sys.stderr)
        return 1
    tmp = cache.with_name(key + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in built_files():
        target = tmp / path.relative_to(PACKAGE_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (tmp / ".complete").touch()
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)
    STAMP.write_text(key + "\n")
    print(f"compiled {len(compiled_sources())} modules ({key})")
    return 0


def main() -> int:
    if "--clean" in sys.argv:
        clean()
        return 0
    if "--check" in sys.argv:
        if stale():
            print(
                "the compiled proxy modules do not match their sources: "
                "run `make compiled` (or `make clean-compiled` for pure Python)",
                file=sys.stderr,
            )
            return 1
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main())
