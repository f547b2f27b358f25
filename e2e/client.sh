# Client pods and assertions for e2e/run.sh (sourced).
# shellcheck shell=bash

CLIENT_IMAGE="${E2E_CLIENT_IMAGE:-docker:cli}"
PASS=0
FAIL=0

# client NAMESPACE POD POLICY [LABEL=VALUE ...]: a docker CLI pod whose DOCKER_HOST is the
# policy's endpoint, labelled as given.
client() {
    local ns=$1 pod=$2 policy=$3
    shift 3
    local labels="" kv
    for kv in "$@"; do
        labels+="    ${kv%%=*}: \"${kv#*=}\""$'\n'
    done
    kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
    kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: $ns
  labels:
    e2e.dockersocket.io/client: "true"
${labels}spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: cli
      image: $CLIENT_IMAGE
      command: [sleep, "3600"]
      env:
        - name: DOCKER_HOST
          value: tcp://dsp-$policy.$DSO_NAMESPACE.svc:2375
YAML
}

_run() {  # ns pod command... -> output in $OUT, exit code in $RC
    local ns=$1 pod=$2
    shift 2
    set +e
    OUT=$(kubectl exec -n "$ns" "$pod" -- timeout 20 sh -c "$*" 2>&1)
    RC=$?
    set -e
}

_result() {  # ok? description
    if [ "$1" = ok ]; then
        PASS=$((PASS + 1))
        printf '  ok    %s\n' "$2"
    else
        FAIL=$((FAIL + 1))
        printf '  FAIL  %s\n        exit %s: %s\n' "$2" "$RC" "$(echo "$OUT" | tail -n 3)"
    fi
}

# allowed NS POD "what" COMMAND: must succeed.
allowed() {
    local ns=$1 pod=$2 what=$3
    shift 3
    _run "$ns" "$pod" "$@"
    if [ "$RC" -eq 0 ]; then _result ok "$ns/$pod: $what"; else _result fail "$ns/$pod: $what"; fi
}

# blocked NS POD "what" COMMAND: must fail with the proxy's 403 "blocked by policy".
blocked() {
    local ns=$1 pod=$2 what=$3
    shift 3
    _run "$ns" "$pod" "$@"
    if [ "$RC" -ne 0 ] && grep -q "blocked by policy" <<<"$OUT"; then
        _result ok "$ns/$pod: $what (blocked by policy)"
    else
        _result fail "$ns/$pod: $what should be blocked by policy"
    fi
}

# unreachable NS POD "what": the NetworkPolicy drops the connection; the proxy never answers.
unreachable() {
    local ns=$1 pod=$2 what=$3
    _run "$ns" "$pod" "docker version"
    if [ "$RC" -ne 0 ] && ! grep -q "blocked by policy" <<<"$OUT" && ! grep -q "Server:" <<<"$OUT"; then
        _result ok "$ns/$pod: $what (cannot connect)"
    else
        _result fail "$ns/$pod: $what should not reach the proxy"
    fi
}

# output_has NS POD "what" COMMAND PATTERN / output_lacks ...: succeeds and (not) prints PATTERN.
output_has() {
    local ns=$1 pod=$2 what=$3 cmd=$4 pattern=$5
    _run "$ns" "$pod" "$cmd"
    if [ "$RC" -eq 0 ] && grep -q -- "$pattern" <<<"$OUT"; then _result ok "$ns/$pod: $what"; else _result fail "$ns/$pod: $what"; fi
}

output_lacks() {
    local ns=$1 pod=$2 what=$3 cmd=$4 pattern=$5
    _run "$ns" "$pod" "$cmd"
    if [ "$RC" -eq 0 ] && ! grep -q -- "$pattern" <<<"$OUT"; then _result ok "$ns/$pod: $what"; else _result fail "$ns/$pod: $what"; fi
}
