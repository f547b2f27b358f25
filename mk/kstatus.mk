# mk/kstatus.mk -- tools/kstatus-check, Flux's kstatus library (sigs.k8s.io/cli-utils) as a
# small command, built with the machine's Go and cached under $(DSO_CACHE) like the control
# plane. tests/integration/test_operator_kstatus.py runs it on the statuses the operator writes.
#
#     make -f mk/kstatus.mk kstatus-check

DSO_CACHE ?= /var/cache/docker-socket-operator
KS_GO     ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
KS_DIR    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../tools/kstatus-check)
# The binary's name carries the hash of its sources and go.sum: a change rebuilds it.
KS_HASH   := $(shell cat $(KS_DIR)/go.mod $(KS_DIR)/go.sum $(KS_DIR)/main.go 2>/dev/null | sha256sum | cut -c1-12)
KS_BIN    := $(DSO_CACHE)/bin/kstatus-check-$(KS_HASH)

.PHONY: kstatus-check

kstatus-check: $(KS_BIN)

$(KS_BIN): $(KS_DIR)/go.mod $(KS_DIR)/go.sum $(KS_DIR)/main.go
	mkdir -p $(dir $@)
	cd $(KS_DIR) && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
	  GOMODCACHE=$(DSO_CACHE)/gomod GOCACHE=$(DSO_CACHE)/gocache GOPATH=$(DSO_CACHE)/gopath \
	  $(KS_GO) build -p 2 -trimpath -o $@.tmp . && mv -f $@.tmp $@
	ln -sf $(notdir $@) $(DSO_CACHE)/bin/kstatus-check
