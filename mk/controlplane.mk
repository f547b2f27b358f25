# mk/controlplane.mk -- pinned, cached build of a real Kubernetes control plane
# (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) plus kwok,
# helm and kubeconform, all compiled from Go modules with the machine's Go.
#
# Included by the main Makefile; can also be run on its own:
#     make -f mk/controlplane.mk controlplane
#
# Binaries land in $(DSO_CACHE)/bin as <name>-<version> with a stable <name>
# symlink. A versioned file that already exists is never rebuilt, so caching
# $(DSO_CACHE) between CI runs (it also holds GOMODCACHE and GOCACHE) makes this
# target a no-op. Bumping a version below builds just that component.
# The Kubernetes and etcd builds use the wrapper modules under
# tools/controlplane/ (upstream go.mod files carry replace directives that
# only work inside their own repositories).

DSO_CACHE ?= /var/cache/docker-socket-operator
CP_GO     ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
CP_GO_P   ?= 2

KUBE_VERSION        ?= v1.34.4
ETCD_VERSION        ?= v3.6.16
KWOK_VERSION        ?= v0.8.0
HELM_VERSION        ?= v3.22.0
KUBECONFORM_VERSION ?= v0.7.0

CP_BIN       := $(DSO_CACHE)/bin
CP_TOOLS_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../tools/controlplane)

# Everything Go writes stays under $(DSO_CACHE); no toolchain downloads.
CP_GOENV := GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
	GOMODCACHE=$(DSO_CACHE)/gomod GOCACHE=$(DSO_CACHE)/gocache GOPATH=$(DSO_CACHE)/gopath
# `go install pkg@version` rejects -mod, so those builds get no GOFLAGS.
CP_GOENV_INSTALL := $(subst GOFLAGS=-mod=mod,GOFLAGS=,$(CP_GOENV))
CP_GOBUILD_FLAGS := -p $(CP_GO_P) -trimpath

_kube_minor := $(word 2,$(subst ., ,$(KUBE_VERSION)))
_kube_ldflags_for = -X $(1).gitVersion=$(KUBE_VERSION) -X $(1).gitMajor=1 \
	-X $(1).gitMinor=$(_kube_minor) -X $(1).gitTreeState=clean
KUBE_LDFLAGS := -s -w \
	$(call _kube_ldflags_for,k8s.io/component-base/version) \
	$(call _kube_ldflags_for,k8s.io/client-go/pkg/version)

CP_KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubectl

CP_VERSIONED := \
	$(foreach c,$(CP_KUBE_CMDS),$(CP_BIN)/$(c)-$(KUBE_VERSION)) \
	$(CP_BIN)/etcd-$(ETCD_VERSION) \
	$(CP_BIN)/kwok-$(KWOK_VERSION) \
	$(CP_BIN)/kwok-stages-$(KWOK_VERSION).yaml \
	$(CP_BIN)/helm-$(HELM_VERSION) \
	$(CP_BIN)/kubeconform-$(KUBECONFORM_VERSION)

# Records how long each build took (appended to $(DSO_CACHE)/build-times.log).
_cp_t0   = start=$$(date +%s)
_cp_done = mv -f $@.tmp $@ && echo "$$(date -u +%FT%TZ) $(notdir $@) $$(( $$(date +%s) - start ))s" \
	| tee -a $(DSO_CACHE)/build-times.log

.PHONY: controlplane controlplane-check controlplane-clean

controlplane: $(CP_VERSIONED)
	@for f in $(notdir $(CP_VERSIONED)); do \
		case $$f in *.yaml) l=$${f%-v*}.yaml;; *) l=$${f%-v*};; esac; ln -sfn "$$f" "$(CP_BIN)/$$l"; done
	@echo "control plane binaries in $(CP_BIN)"

$(CP_BIN):
	mkdir -p $@

# The kube-* commands share one wrapper module (and the Go build cache).
$(foreach c,$(CP_KUBE_CMDS),$(CP_BIN)/$(c)-$(KUBE_VERSION)): $(CP_BIN)/%-$(KUBE_VERSION): | $(CP_BIN)
	@$(_cp_t0); cd $(CP_TOOLS_DIR)/kube && $(CP_GOENV) $(CP_GO) build $(CP_GOBUILD_FLAGS) \
		-ldflags '$(KUBE_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$* && $(_cp_done)

$(CP_BIN)/etcd-$(ETCD_VERSION): | $(CP_BIN)
	@$(_cp_t0); cd $(CP_TOOLS_DIR)/etcd && $(CP_GOENV) $(CP_GO) build $(CP_GOBUILD_FLAGS) \
		-ldflags '-s -w' -o $@.tmp . && $(_cp_done)

# No replace directives upstream: plain `go install pkg@version` into a
# per-tool GOBIN, then moved into place.
# $(call _cp_install,package@version,extra ldflags)
_cp_install = @$(_cp_t0); gobin=$(DSO_CACHE)/gobin/$(notdir $@); mkdir -p $$gobin && \
	$(CP_GOENV_INSTALL) GOBIN=$$gobin $(CP_GO) install $(CP_GOBUILD_FLAGS) \
		-ldflags '-s -w $(2)' $(1) && mv -f $$gobin/$(notdir $(firstword $(subst @, ,$(1)))) $@.tmp && \
	rm -rf $$gobin && $(_cp_done)

$(CP_BIN)/kwok-$(KWOK_VERSION): | $(CP_BIN)
	$(call _cp_install,sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION))

# The bare kwok binary (unlike kwokctl) has no built-in stages since v0.7: ship
# kwokctl's defaults (node-initialize, node-heartbeat-with-lease, pod-ready,
# pod-complete, pod-delete) from the same module version as a --config file.
CP_KWOK_SRC := $(DSO_CACHE)/gomod/sigs.k8s.io/kwok@$(KWOK_VERSION)/kustomize/stage
CP_KWOK_STAGES := node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml
$(CP_BIN)/kwok-stages-$(KWOK_VERSION).yaml: | $(CP_BIN)/kwok-$(KWOK_VERSION)
	@test -d $(CP_KWOK_SRC) || { cd /tmp && $(CP_GOENV_INSTALL) $(CP_GO) mod download sigs.k8s.io/kwok@$(KWOK_VERSION); }
	@for f in $(CP_KWOK_STAGES); do echo "---"; echo "# sigs.k8s.io/kwok@$(KWOK_VERSION) kustomize/stage/$$f"; \
		cat $(CP_KWOK_SRC)/$$f; done > $@.tmp && mv -f $@.tmp $@

$(CP_BIN)/helm-$(HELM_VERSION): | $(CP_BIN)
	$(call _cp_install,helm.sh/helm/v3/cmd/helm@$(HELM_VERSION),-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v3/internal/version.gitTreeState=clean)

$(CP_BIN)/kubeconform-$(KUBECONFORM_VERSION): | $(CP_BIN)
	$(call _cp_install,github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION),-X main.version=$(KUBECONFORM_VERSION))

controlplane-check:
	@set -e; b=$(CP_BIN); \
	for c in $(CP_KUBE_CMDS); do printf '%-24s ' $$c; $$b/$$c --version; done; \
	printf '%-24s ' etcd;        $$b/etcd --version | head -1; \
	printf '%-24s ' kwok;        $$b/kwok --version; \
	printf '%-24s ' helm;        $$b/helm version --short; \
	printf '%-24s ' kubeconform; $$b/kubeconform -v

controlplane-clean:
	rm -rf $(CP_BIN) $(DSO_CACHE)/gobin
