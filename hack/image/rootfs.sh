#!/bin/bash
# Runs inside the Dockerfile's builder stage (as root, no network): assemble /rootfs, the whole
# filesystem of the final image, which is `FROM scratch` + this directory.
#
# What goes in, and nothing else (distroless-style; no shell, no package manager, no pip):
#   - Debian's CPython 3.11 binary and its standard library, minus what a server never imports
#     (tests, lib2to3, pydoc data, distutils, ensurepip, tkinter, curses, sqlite3, readline,
#     dbm, crypt, nis: the last ones would drag in ncurses, SQLite, Berkeley DB, Kerberos);
#   - the venv /opt/dso (the project and its wheels), shared objects stripped of debug symbols;
#   - every shared library those binaries load (ldd closure) and the dynamic loader;
#   - ca-certificates' bundle, passwd/group with the nonroot user, nsswitch, os-release;
#   - for each Debian package a file came from: its copyright file (the licence) and its dpkg
#     status entry in /var/lib/dpkg/status.d/ (what image scanners read).
set -euo pipefail

OUT=/rootfs
VENV=/opt/dso
PY=python3.11
STDLIB=/usr/lib/$PY
MULTIARCH=x86_64-linux-gnu

mkdir -p "$OUT"/{etc,tmp,usr/bin,usr/lib/$MULTIARCH,usr/lib64,opt,var/lib/dpkg/status.d}
chmod 1777 "$OUT/tmp"
# Merged /usr, as in Debian: the loader path /lib64/ld-linux-x86-64.so.2 must resolve.
ln -s usr/lib "$OUT/lib"
ln -s usr/lib64 "$OUT/lib64"
ln -s usr/bin "$OUT/bin"

# -- Python and the venv ----------------------------------------------------------------------
cp -a "/usr/bin/$PY" "$OUT/usr/bin/"
ln -s "$PY" "$OUT/usr/bin/python3"
# tar matches --exclude against member names, which have no leading slash.
lib=${STDLIB#/}
tar -C / -cf - \
    --exclude="$lib/test" --exclude="$lib/*/test" --exclude="$lib/*/tests" \
    --exclude="$lib/idlelib" --exclude="$lib/tkinter" --exclude="$lib/turtledemo" \
    --exclude="$lib/lib2to3" --exclude="$lib/pydoc_data" --exclude="$lib/distutils" \
    --exclude="$lib/ensurepip" --exclude="$lib/sqlite3" --exclude="$lib/curses" \
    --exclude="$lib/dbm" --exclude="$lib/config-3.11-$MULTIARCH" --exclude="$lib/__phello__" \
    --exclude="$lib/turtle.py" --exclude="$lib/crypt.py" \
    --exclude="$lib/lib-dynload/_tkinter*" --exclude="$lib/lib-dynload/_sqlite3*" \
    --exclude="$lib/lib-dynload/_curses*" --exclude="$lib/lib-dynload/readline*" \
    --exclude="$lib/lib-dynload/_dbm*" --exclude="$lib/lib-dynload/_gdbm*" \
    --exclude="$lib/lib-dynload/_crypt*" --exclude="$lib/lib-dynload/nis*" \
    "${STDLIB#/}" "etc/$PY" | tar -C "$OUT" -xf -

# Wheels ship their extension modules with debug symbols (uvloop alone: 13 MB -> 2 MB).
find "$VENV" -type f \( -name '*.so' -o -name '*.so.*' \) -exec strip --strip-unneeded {} +
cp -a "$VENV" "$OUT$VENV"

# -- Shared libraries: the closure of everything that is an ELF object in the tree ------------
libs=$(find "$OUT/usr/bin" "$OUT$STDLIB/lib-dynload" "$OUT$VENV" -type f \
    \( -name "$PY" -o -name '*.so' -o -name '*.so.*' \) -print0 \
    | { xargs -0 ldd 2>/dev/null || true; } \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' \
    | { grep -v "^$VENV/" || true; } | sort -u)
[ -n "$libs" ] || { echo "rootfs.sh: ldd found no libraries" >&2; exit 1; }
owners=()
for lib in $libs; do
    real=$(readlink -f "$lib")
    dir=$(readlink -f "$(dirname "$lib")")
    mkdir -p "$OUT$(dirname "$real")" "$OUT$dir"
    cp -a "$real" "$OUT$real"
    [ "$dir/$(basename "$lib")" = "$real" ] || ln -sf "$real" "$OUT$dir/$(basename "$lib")"
    owners+=("$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || true)")
done
cp -a /etc/ld.so.conf /etc/ld.so.conf.d "$OUT/etc/"
mkdir -p "$OUT/var/cache/ldconfig"
ldconfig -r "$OUT"

# -- /etc and certificates --------------------------------------------------------------------
cp -a /etc/passwd /etc/group /etc/nsswitch.conf "$OUT/etc/"
cp -a /usr/lib/os-release "$OUT/usr/lib/"
ln -s ../usr/lib/os-release "$OUT/etc/os-release"
mkdir -p "$OUT/etc/ssl/certs" "$OUT/usr/lib/ssl"
cp -a /etc/ssl/certs/ca-certificates.crt "$OUT/etc/ssl/certs/"
cp -a /etc/ssl/openssl.cnf "$OUT/etc/ssl/"
# OpenSSL's default CA file (OPENSSLDIR=/usr/lib/ssl): Python's default context loads it.
ln -s /etc/ssl/certs/ca-certificates.crt "$OUT/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/openssl.cnf "$OUT/usr/lib/ssl/openssl.cnf"

# -- Licences and package records -------------------------------------------------------------
packages=$(printf '%s\n' "${owners[@]}" "$PY-minimal: x" "lib$PY-minimal: x" "lib$PY-stdlib: x" \
    "ca-certificates: x" "base-files: x" \
    | sed -n 's/^\([^:, ]*\)\(:[a-z0-9]*\)\{0,1\}: .*/\1/p' | sort -u)
# Some packages' doc directory is a link to a sibling's (libstdc++6 -> gcc-12-base), which the
# base's trim removed: their licence is the copyright file of a package built from the same
# source.
all_installed=$(dpkg-query -W -f='${Package} ${source:Package}\n')
for pkg in $packages; do
    src=$(dpkg-query -W -f='${source:Package}' "$pkg")
    found=
    for cand in "$pkg" $(echo "$all_installed" | awk -v s="$src" '$2 == s { print $1 }'); do
        if [ -f "/usr/share/doc/$cand/copyright" ]; then
            mkdir -p "$OUT/usr/share/doc/$pkg"
            cp -L "/usr/share/doc/$cand/copyright" "$OUT/usr/share/doc/$pkg/copyright"
            found=1
            break
        fi
    done
    [ -n "$found" ] || { echo "rootfs.sh: no copyright file for $pkg" >&2; exit 1; }
    dpkg-query -s "$pkg" >"$OUT/var/lib/dpkg/status.d/$pkg"
done
echo "rootfs.sh: $(du -sh "$OUT" | cut -f1) with $(echo "$packages" | wc -w) Debian packages:" $packages
