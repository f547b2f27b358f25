#!/usr/bin/env bash
# Build the docker-socket-operator image: the local base (base.sh), the wheels (wheels.sh),
# then `docker build --network none`. `make image` runs this; so does the integration test,
# against its private dockerd (DOCKER_HOST).
#
# Usage: hack/image/build.sh [TAG]    (default docker-socket-operator:<pyproject version>)
# Env: DOCKER_HOST, DSO_CACHE, DSO_BASE_IMAGE, DSO_IMAGE_SOURCE (the source label; default the
# git remote "origin"). Exit 77: cannot build here (see base.sh).
set -euo pipefail
# shellcheck source=hack/image/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=$(project_version)
TAG="${1:-docker-socket-operator:$VERSION}"
BASE_IMAGE="${DSO_BASE_IMAGE:-dso-base:bookworm}"
SOURCE="${DSO_IMAGE_SOURCE:-$(git -C "$REPO_ROOT" remote get-url origin 2>/dev/null || echo docker-socket-operator)}"

require_docker
t0=$SECONDS
"$REPO_ROOT/hack/image/base.sh"
t1=$SECONDS
"$REPO_ROOT/hack/image/wheels.sh" "$REPO_ROOT/build/wheels"
t2=$SECONDS
log "docker build $TAG"
# BuildKit (when the buildx plugin exists) and the legacy builder both honour --network none.
docker build --network none --pull=false \
    --build-arg BASE="$BASE_IMAGE" --build-arg VERSION="$VERSION" --build-arg SOURCE="$SOURCE" \
    -t "$TAG" "$REPO_ROOT" >&2
t3=$SECONDS
# The legacy builder leaves the builder stage behind as a dangling image (BuildKit does not).
docker image prune -f --filter label=io.docker-socket-operator.stage=builder >/dev/null || true
size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "built $TAG: $((size / 1000000)) MB; base $((t1 - t0))s, wheels $((t2 - t1))s, build $((t3 - t2))s"
mkdir -p "$IMAGE_CACHE"
printf '%s %s size=%sMB base=%ss wheels=%ss build=%ss\n' "$(date -u +%FT%TZ)" "$TAG" \
    "$((size / 1000000))" "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" >>"$IMAGE_CACHE/build-times.log"
