#!/usr/bin/env bash
# End to end on a real cluster: kind (Docker socket mounted into the workers), the image built
# here, `helm install`, the five seed policies, and docker CLI client pods that must succeed
# where their policy allows, get "blocked by policy" where it does not, and cannot connect at
# all without the policy's client labels.
#
#   make e2e                    # needs Docker (daemon running) and kind >= v0.24, kubectl, helm
#   E2E_KEEP=1 make e2e         # keep the cluster and the test containers afterwards
#   E2E_SKIP_BUILD=1 make e2e   # use the docker-socket-operator:<version> image already built
#
# The clients act on the HOST's Docker (through the proxies): the script creates a few
# `e2e-*` containers there and removes them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v docker >/dev/null 2>&1 || missing+=("docker CLI")
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    missing+=("a running Docker daemon ('docker info' fails)")
fi
command -v kind >/dev/null 2>&1 || missing+=("kind >= v0.24 (https://kind.sigs.k8s.io)")
command -v kubectl >/dev/null 2>&1 || missing+=("kubectl")
command -v helm >/dev/null 2>&1 || missing+=("helm v3")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'make e2e needs Docker and kind (also kubectl and helm); missing: %s\n' "$(IFS=,; echo "${missing[*]}")"
    exit 1
fi
kind_version=$(kind version | sed -n 's/^kind v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r kind_major kind_minor <<<"${kind_version:-0 0}"
if [ "$kind_major" -eq 0 ] && [ "$kind_minor" -lt 24 ]; then
    echo "make e2e needs kind >= v0.24 (its kindnet enforces NetworkPolicy); found: $(kind version)"
    exit 1
fi

CLUSTER=${E2E_CLUSTER:-dso-e2e}
VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/docker-socket-operator/Chart.yaml)
IMAGE=docker-socket-operator:$VERSION
DSO_NAMESPACE=docker-socket-operator
TEST_LABEL=e2e.dockersocket.io=1
export KUBECONFIG
KUBECONFIG=$(mktemp -t dso-e2e-kubeconfig.XXXXXX)

diagnostics() {
    echo "== diagnostics"
    kubectl get pods -A -o wide || true
    kubectl get dockersocketpolicies -o yaml || true
    kubectl logs -n "$DSO_NAMESPACE" -l app.kubernetes.io/name=docker-socket-operator --tail=200 --prefix || true
    kubectl logs -n "$DSO_NAMESPACE" -l app.kubernetes.io/name=docker-socket-proxy --tail=50 --prefix || true
}

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -s "$KUBECONFIG" ]; then diagnostics; fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        echo "E2E_KEEP=1: cluster $CLUSTER and the e2e-* containers stay (KUBECONFIG=$KUBECONFIG)"
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
        docker ps -aq --filter "label=$TEST_LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
        docker image rm bb:e2e >/dev/null 2>&1 || true
        rm -f "$KUBECONFIG"
    fi
    exit "$rc"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "image $IMAGE"
if [ "${E2E_SKIP_BUILD:-0}" = 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "using the existing $IMAGE"
else
    make image IMAGE="$IMAGE"
fi

step "kind cluster $CLUSTER ($(kind version))"
kind create cluster --name "$CLUSTER" --config e2e/kind.yaml --kubeconfig "$KUBECONFIG" --wait 3m
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "helm install"
kubectl create namespace "$DSO_NAMESPACE"
kubectl label namespace "$DSO_NAMESPACE" pod-security.kubernetes.io/enforce=privileged
helm install docker-socket-operator charts/docker-socket-operator -n "$DSO_NAMESPACE" \
    --set image.pullPolicy=Never --wait --timeout 3m

step "containers on the host's Docker"
run_host() {  # name label... : a sleeping container from the image we built (no pull needed)
    local name=$1
    shift
    local args=(--label "$TEST_LABEL") l
    for l in "$@"; do args+=(--label "$l"); done
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" "${args[@]}" --entrypoint sleep "$IMAGE" infinity >/dev/null
    echo "  $name"
}
run_host e2e-mcp-gateway
run_host e2e-web caddy=web.example chatops.example/managed=true
run_host e2e-shop-web com.docker.compose.project=shop
docker tag "$IMAGE" bb:e2e  # the terminal-manager policy allows images bb:*

step "seed policies"
# restart-one names the container mcp-gateway; the e2e container is e2e-mcp-gateway.
sed 's/\[mcp-gateway\]/[e2e-mcp-gateway]/g' examples/policies/restart-one.yaml >"$KUBECONFIG.restart-one.yaml"
kubectl apply --server-side -f examples/policies/caddy-discovery.yaml -f examples/policies/n8n-bot.yaml \
    -f examples/policies/compose-admin.yaml -f examples/policies/terminal-manager.yaml \
    -f "$KUBECONFIG.restart-one.yaml"
rm -f "$KUBECONFIG.restart-one.yaml"
kubectl wait dockersocketpolicy --all --for=condition=Ready --timeout=3m
kubectl get dockersocketpolicies

step "client pods"
# shellcheck source=e2e/client.sh
. e2e/client.sh
client ingress caddy caddy-discovery app.kubernetes.io/name=caddy
client automation n8n n8n-bot app.kubernetes.io/name=n8n
client ops watchdog restart-one app=watchdog
client ops stranger restart-one                      # right namespace, no client label
client default watchdog restart-one app=watchdog     # right label, wrong namespace
client admin compose-admin compose-admin app=compose-admin
client ide terminal-manager terminal-manager app=terminal-manager
kubectl wait pod --all-namespaces -l e2e.dockersocket.io/client=true --for=condition=Ready --timeout=3m

step "caddy-discovery: labelled containers only, read-only"
output_has ingress caddy "lists the caddy-labelled container" "docker ps --format '{{.Names}}'" e2e-web
output_lacks ingress caddy "does not see unlabelled containers" "docker ps --format '{{.Names}}'" e2e-mcp-gateway
blocked ingress caddy "cannot restart" "docker restart e2e-web"
blocked ingress caddy "cannot create containers" "docker create bb:e2e"

step "n8n-bot: start/stop/restart managed containers, pull, never exec"
allowed automation n8n "restarts a managed container" "docker restart -t 0 e2e-web"
blocked automation n8n "cannot restart an unmanaged container" "docker restart -t 0 e2e-mcp-gateway"
blocked automation n8n "cannot exec" "docker exec e2e-web true"
blocked automation n8n "cannot create containers" "docker create bb:e2e"

step "restart-one: exactly one container"
allowed ops watchdog "restarts e2e-mcp-gateway" "docker restart -t 0 e2e-mcp-gateway"
blocked ops watchdog "cannot restart another container" "docker restart -t 0 e2e-web"
blocked ops watchdog "cannot list containers" "docker ps"
unreachable ops stranger "a pod without the client label"
unreachable default watchdog "the client label in another namespace"

step "compose-admin: project shop only, no host binds"
allowed admin compose-admin "restarts a shop container" "docker restart -t 0 e2e-shop-web"
output_lacks admin compose-admin "sees only the shop project" "docker ps --format '{{.Names}}'" e2e-web
blocked admin compose-admin "cannot bind-mount /etc" \
    "docker create --label com.docker.compose.project=shop -v /etc:/host bb:e2e"
blocked admin compose-admin "cannot restart outside the project" "docker restart -t 0 e2e-mcp-gateway"

step "terminal-manager: sandboxes without host power, no exec"
allowed ide terminal-manager "creates a labelled sandbox" \
    "docker create --name e2e-term --label ide.example/terminal=true --label $TEST_LABEL bb:e2e"
blocked ide terminal-manager "cannot exec into it" "docker exec e2e-term true"
blocked ide terminal-manager "cannot create a privileged sandbox" \
    "docker create --privileged --label ide.example/terminal=true bb:e2e"
blocked ide terminal-manager "cannot use another image" \
    "docker create --label ide.example/terminal=true $IMAGE"

printf '\n%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
