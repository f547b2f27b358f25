# mk/node.mk -- pinned, cached build of what a real test node runs:
# kubelet and kube-proxy (same Kubernetes version and wrapper module as the
# control plane, see mk/controlplane.mk) and kube-router, whose firewall
# controller is the NetworkPolicy enforcer of the node suite (test-only,
# never shipped). Plus the Debian packages a node needs.
#
# Included by the main Makefile (after mk/controlplane.mk, whose variables it
# reuses); binaries land in $(DSO_CACHE)/bin as <name>-<version> with a
# stable <name> symlink, never rebuilt while the versioned file exists.

KUBE_ROUTER_VERSION ?= v2.1.0

NODE_KUBE_CMDS := kubelet kube-proxy

NODE_VERSIONED := \
	$(foreach c,$(NODE_KUBE_CMDS),$(CP_BIN)/$(c)-$(KUBE_VERSION)) \
	$(CP_BIN)/kube-router-$(KUBE_ROUTER_VERSION)

# Debian packages a node starts for real (command:package).
NODE_DEPS := containerd:containerd runc:runc iptables:iptables ipset:ipset ip:iproute2 \
	/usr/lib/cni/bridge:containernetworking-plugins

.PHONY: node-bins node-deps node-check

node-bins: $(NODE_VERSIONED)
	@for f in $(notdir $(NODE_VERSIONED)); do ln -sfn "$$f" "$(CP_BIN)/$${f%-v*}"; done
	@echo "node binaries in $(CP_BIN)"

node-deps:
	@missing=""; \
	for pair in $(NODE_DEPS); do \
	  c=$${pair%%:*}; { [ -x "$$c" ] || command -v "$$c" >/dev/null 2>&1; } || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Same wrapper module and build cache as the control plane's kube-* commands.
$(foreach c,$(NODE_KUBE_CMDS),$(CP_BIN)/$(c)-$(KUBE_VERSION)): $(CP_BIN)/%-$(KUBE_VERSION): | $(CP_BIN)
	@$(_cp_t0); cd $(CP_TOOLS_DIR)/kube && $(CP_GOENV) $(CP_GO) build $(CP_GOBUILD_FLAGS) \
		-ldflags '$(KUBE_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$* && $(_cp_done)

$(CP_BIN)/kube-router-$(KUBE_ROUTER_VERSION): | $(CP_BIN)
	$(call _cp_install,github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$(KUBE_ROUTER_VERSION))

node-check:
	@set -e; b=$(CP_BIN); \
	printf '%-12s ' kubelet;     $$b/kubelet --version; \
	printf '%-12s ' kube-proxy;  $$b/kube-proxy --version; \
	printf '%-12s ' kube-router; $$b/kube-router --version | head -1
