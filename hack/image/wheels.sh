#!/usr/bin/env bash
# Fill the Docker build context's wheel directory (default build/wheels/) with the project's
# wheel and every wheel it needs with the [operator] extra, for the image's Python: CPython
# 3.11 on glibc x86_64 (Debian bookworm: glibc 2.36). The Dockerfile installs from it with
# `pip install --no-index` because its RUN steps get no network.
#
# The dependency wheels are cached in $DSO_CACHE/image/wheels-<key>, the key being a digest of
# the requirements and the target, so reruns do not touch PyPI for them; pip's own cache is
# $PIP_CACHE_DIR (default $DSO_CACHE/pip). The project wheel is rebuilt every time, from a
# clean copy of the sources (an in-tree setuptools build/ dir could ship deleted modules).
#
# Usage: hack/image/wheels.sh [OUT_DIR]     Env: PYTHON (a python with pip), DSO_CACHE.
set -euo pipefail
# shellcheck source=hack/image/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="${1:-$REPO_ROOT/build/wheels}"
EXTRAS=operator
PY_VERSION=3.11
ABI=cp311
# Every manylinux tag bookworm's glibc (2.36) runs: pip expands only the legacy aliases
# (manylinux2014 -> 2010 -> 1), not manylinux_2_N, so list them all.
GLIBC_MINOR=36
PLATFORM=manylinux_2_${GLIBC_MINOR}_x86_64
platform_args=(--platform manylinux2014_x86_64)
for minor in $(seq 5 "$GLIBC_MINOR"); do platform_args+=(--platform "manylinux_2_${minor}_x86_64"); done
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$DSO_CACHE/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO_ROOT/.venv/bin/python" ]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 || unavailable "$PYTHON has no pip"

mkdir -p "$IMAGE_CACHE"
work=$(mktemp -d "$IMAGE_CACHE/wheels-tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The runtime requirements: [project] dependencies plus the extra, straight from pyproject.
"$PYTHON" - "$REPO_ROOT/pyproject.toml" "$EXTRAS" >"$work/requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
reqs = list(project.get("dependencies", []))
for extra in sys.argv[2].split(","):
    reqs += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(sorted(reqs)))
PY
key=$(printf '%s\n' "$PY_VERSION $ABI $PLATFORM" | cat - "$work/requirements.txt" | sha256sum | cut -c1-16)
deps="$IMAGE_CACHE/wheels-$key"

start=$SECONDS
if [ -f "$deps/.complete" ]; then
    log "reusing cached dependency wheels $deps"
else
    log "downloading dependency wheels for cp${PY_VERSION/./} $PLATFORM"
    mkdir -p "$work/deps"
    "$PYTHON" -m pip download -q --only-binary=:all: \
        "${platform_args[@]}" --python-version "$PY_VERSION" --implementation cp --abi "$ABI" \
        -d "$work/deps" -r "$work/requirements.txt"
    cp "$work/requirements.txt" "$work/deps/requirements.txt"
    touch "$work/deps/.complete"
    # Another run may have won the race; either copy is complete.
    mv -T "$work/deps" "$deps" 2>/dev/null || rm -rf "$work/deps"
    # Wheel sets for older requirements would only fill the CI cache.
    find "$IMAGE_CACHE" -maxdepth 1 -type d -regex '.*/wheels-[0-9a-f]+' ! -path "$deps" \
        -exec rm -rf {} +
fi

# A clean copy of what the wheel is built from: no .venv, build/, egg-info or caches.
mkdir -p "$work/src"
sources=(pyproject.toml setup.py README.md operator)
for f in "$REPO_ROOT"/LICENSE*; do [ -e "$f" ] && sources+=("${f##*/}"); done
tar -C "$REPO_ROOT" --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.pyc' \
    --exclude='*.so' --exclude=.compiled -c "${sources[@]}" | tar -C "$work/src" -x
rm -rf "$OUT"
mkdir -p "$OUT"
# The request path compiled with mypyc (setup.py) when this Python has mypy and a C compiler
# is here, as `make compiled` builds it for the tests; else pure Python. A compiled wheel is
# kept by the digest of its sources: the image is rebuilt often, the sources change less.
if DSO_COMPILE=1 "$PYTHON" -c 'import mypyc.build, setuptools, wheel' 2>/dev/null && command -v gcc >/dev/null; then
    src_key=$({ "$PYTHON" -c 'import sys, mypy.version; print(sys.version, mypy.version.__version__)'
        cd "$work/src" && find . -type f | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-16)
    kept="$IMAGE_CACHE/project-wheel-$src_key"
    if [ ! -f "$kept/.complete" ]; then
        log "compiling the request path (mypyc)"
        # One compiled wheel is kept: older ones would only fill the CI cache.
        find "$IMAGE_CACHE" -maxdepth 1 -type d -name 'project-wheel-*' -exec rm -rf {} +
        mkdir -p "$kept.tmp"
        DSO_COMPILE=1 "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$kept.tmp" \
            "$work/src" >"$work/wheel.log" 2>&1 \
            || { cat "$work/wheel.log" >&2; die "building the compiled project wheel failed"; }
        touch "$kept.tmp/.complete"
        mv -T "$kept.tmp" "$kept"
    fi
    cp "$kept"/*.whl "$OUT"/
else
    # setuptools' deprecation chatter goes to a log shown only when the build fails.
    "$PYTHON" -m pip wheel -q --no-deps -w "$OUT" "$work/src" >"$work/wheel.log" 2>&1 \
        || { cat "$work/wheel.log" >&2; die "building the project wheel failed"; }
fi
cp "$deps"/*.whl "$OUT"/
log "$(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT ($((SECONDS - start))s)"
