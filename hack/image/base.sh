#!/usr/bin/env bash
# Build the local base image dso-base:bookworm: Debian bookworm (debootstrap minbase) with
# python3, python3-venv, ca-certificates and binutils, trimmed, imported with `docker import`.
# It is the Dockerfile's builder stage only: the final image is FROM scratch plus the files
# hack/image/rootfs.sh picks from it (binutils is there for `strip`).
#
# Why not `FROM debian:bookworm`: no container registry is reachable from the build machines,
# only Debian's package mirrors. The rootfs tarball is cached under
# $DSO_CACHE/image/ so reruns (CI) skip debootstrap; the import is skipped when the daemon
# already holds an image made from the same tarball (its Comment records the tarball's digest).
#
# Env: DOCKER_HOST (the daemon to import into), DSO_CACHE, DSO_BASE_IMAGE (default
# dso-base:bookworm), DSO_DEBIAN_MIRROR (default: the mirror this machine's apt uses),
# DSO_IMAGE_REFRESH=1 (re-run debootstrap even when a cached tarball exists).
# Exit 77: cannot run here (not root, no debootstrap, mirror or dockerd unreachable).
set -euo pipefail
# shellcheck source=hack/image/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,binutils
BASE_IMAGE="${DSO_BASE_IMAGE:-dso-base:$SUITE}"
# Bump when the recipe below changes: cached tarballs of older recipes are then not reused.
RECIPE=3
TARBALL="$IMAGE_CACHE/rootfs-$SUITE-minbase-python3-r$RECIPE.tar.gz"
# The non-root user the final image runs as (distroless' "nonroot" numbers).
NONROOT_ID=65532

# The mirror apt on this machine already uses for $SUITE (deb822 .sources or one-line .list).
debian_mirror() {
    if [ -n "${DSO_DEBIAN_MIRROR:-}" ]; then
        echo "$DSO_DEBIAN_MIRROR"
        return
    fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$SUITE" 'BEGIN { RS = "" }
            {
                types = ""; suites = ""; uris = ""; enabled = "yes"
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    line = lines[i]
                    if (line ~ /^[ \t]*#/) continue
                    if (line ~ /^Types:/) types = line
                    if (line ~ /^Suites:/) suites = " " substr(line, 8) " "
                    if (line ~ /^URIs:/) { split(substr(line, 6), u, " "); uris = u[1] }
                    if (line ~ /^Enabled:[ \t]*no/) enabled = "no"
                }
                if (enabled == "yes" && types ~ /[ \t]deb([ \t]|$)/ && suites ~ ("[ \t]" suite "[ \t]") && uris != "") {
                    print uris; exit
                }
            }' "$f")
        if [ -n "$uri" ]; then
            echo "$uri"
            return
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # "deb [opts] URI SUITE COMPONENTS..."; options in brackets are dropped first.
        uri=$(sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')
        if [ -n "$uri" ]; then
            echo "$uri"
            return
        fi
    done
    echo "http://deb.debian.org/debian"
}

mirror_reachable() {
    # python3 is on every Debian machine this runs on; curl and wget may not be.
    python3 - "$1/dists/$SUITE/Release" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=20) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as e:  # any failure means "cannot build the base here"
    print(f"{sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
PY
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return
    command -v apt-get >/dev/null 2>&1 || unavailable "debootstrap not installed and no apt-get"
    log "installing debootstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >&2 \
        || unavailable "apt-get install debootstrap failed"
    command -v debootstrap >/dev/null 2>&1 || unavailable "debootstrap still missing after install"
}

# debootstrap mounts /proc and /sys inside the target; a failed run can leave them behind, and
# rm -rf must never walk into them.
unmount_below() {
    local mnt
    awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/self/mounts | sort -r \
        | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

# Keep the base small: no docs (copyright files stay, they are the licences), man pages,
# locales, apt lists or caches, logs; no host identity leaking in from debootstrap.
trim_rootfs() {
    local root="$1"
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
        "$root"/usr/share/lintian "$root"/usr/share/linda \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache
    # glibc's iconv modules (8 MB): Python has its own codecs and nothing else here uses iconv.
    rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv
    find "$root/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
    # Docker provides these at run time.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    : >"$root/etc/machine-id"
    # Later `apt-get install` in a derived image keeps the trim (no docs, man pages, locales).
    cat >"$root/etc/dpkg/dpkg.cfg.d/dso-trim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
    grep -q "^nonroot:" "$root/etc/passwd" \
        || echo "nonroot:x:$NONROOT_ID:$NONROOT_ID:nonroot:/nonexistent:/usr/sbin/nologin" >>"$root/etc/passwd"
    grep -q "^nonroot:" "$root/etc/group" || echo "nonroot:x:$NONROOT_ID:" >>"$root/etc/group"
}

build_rootfs_tarball() {
    [ "$(id -u)" = 0 ] || unavailable "debootstrap needs root"
    ensure_debootstrap
    local mirror keyring=()
    mirror=$(debian_mirror)
    mirror_reachable "$mirror" || unavailable "Debian mirror $mirror unreachable"
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
        && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    mkdir -p "$IMAGE_CACHE"
    local work
    work=$(mktemp -d "$IMAGE_CACHE/rootfs.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now: the trap runs after it goes out of scope
    trap "unmount_below '$work'; rm -rf --one-file-system '$work'" EXIT
    log "debootstrap $SUITE from $mirror (packages: $PACKAGES)"
    local start=$SECONDS
    if ! debootstrap --variant=minbase --include="$PACKAGES" "${keyring[@]}" \
        "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.out" 2>&1; then
        tail -n 30 "$work/debootstrap.out" >&2
        [ -f "$work/rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$work/rootfs/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    log "debootstrap took $((SECONDS - start))s"
    unmount_below "$work/rootfs"
    trim_rootfs "$work/rootfs"
    # Sorted, numeric owners, fixed mtimes would make it reproducible; sorted + numeric is
    # enough for the cache to be stable across reruns that reuse the tarball.
    tar --numeric-owner --sort=name -C "$work/rootfs" -c . | gzip -1 >"$work/rootfs.tar.gz"
    mv -f "$work/rootfs.tar.gz" "$TARBALL"
    # Tarballs of older recipes would only fill the CI cache.
    find "$IMAGE_CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar.gz" ! -path "$TARBALL" -delete
    log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
    unmount_below "$work"
    rm -rf --one-file-system "$work"
    trap - EXIT
}

main() {
    require_docker
    if [ -f "$TARBALL" ] && [ "${DSO_IMAGE_REFRESH:-0}" != 1 ]; then
        log "reusing cached rootfs $TARBALL"
    else
        build_rootfs_tarball
    fi
    local digest current
    digest="sha256:$(sha256sum "$TARBALL" | cut -d' ' -f1)"
    current=$(docker image inspect -f '{{.Comment}}' "$BASE_IMAGE" 2>/dev/null || true)
    if [ "$current" = "dso-base rootfs $digest" ]; then
        log "$BASE_IMAGE is up to date"
        return
    fi
    local start=$SECONDS
    docker import \
        --message "dso-base rootfs $digest" \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/usr/bin/python3"]' \
        - "$BASE_IMAGE" <"$TARBALL" >/dev/null
    log "imported $BASE_IMAGE in $((SECONDS - start))s"
}

main "$@"
