# shellcheck shell=bash
# Shared helpers for hack/image/*.sh (sourced, not run).
# Exit code 77 means "cannot run on this machine" (no debootstrap, no mirror, no dockerd):
# callers such as the integration test skip on it instead of failing.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DSO_CACHE="${DSO_CACHE:-/var/cache/docker-socket-operator}"
# shellcheck disable=SC2034  # used by the scripts that source this file
IMAGE_CACHE="$DSO_CACHE/image"
EX_UNAVAILABLE=77

log() { printf '[image] %s\n' "$*" >&2; }
unavailable() { log "unavailable: $*"; exit "$EX_UNAVAILABLE"; }
die() { log "error: $*"; exit 1; }

# The project version, from pyproject.toml (the image tag and its version label).
project_version() {
    sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$REPO_ROOT/pyproject.toml" | head -n1
}

require_docker() {
    command -v docker >/dev/null 2>&1 || unavailable "docker CLI not installed"
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
        || unavailable "no dockerd answers at DOCKER_HOST=${DOCKER_HOST:-<default socket>}"
}
