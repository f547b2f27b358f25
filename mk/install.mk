# mk/install.mk -- the Helm chart, the manifests generated from it, and the policy reference.
#
# Included by the main Makefile (`include mk/install.mk`); on its own:
#     make -f mk/install.mk chart-lint
#
# helm comes from PATH or $(DSO_CACHE)/bin (built by `make controlplane`).

DSO_CACHE   ?= /var/cache/docker-socket-operator
INSTALL_PY  ?= .venv/bin/python
CHART_DIR   := charts/docker-socket-operator
HELM        ?= $(or $(shell command -v helm 2>/dev/null),$(DSO_CACHE)/bin/helm)

.PHONY: chart-lint install-manifests install-manifests-check policy-reference policy-reference-check

# helm lint (strict) with the defaults and with every optional object on; the CRD in the
# chart must be crds/ verbatim.
chart-lint:
	$(HELM) lint --strict $(CHART_DIR)
	$(HELM) lint --strict $(CHART_DIR) --set monitoring.scraper.enabled=true \
	  --set monitoring.serviceMonitor.enabled=true --set monitoring.podMonitor.enabled=true \
	  --set namespace.create=true
	diff -r crds $(CHART_DIR)/crds

# Copy crds/ into the chart, then regenerate deploy/install.yaml and deploy/kustomize/.
install-manifests:
	cp crds/*.yaml $(CHART_DIR)/crds/
	HELM=$(HELM) $(INSTALL_PY) hack/gen_install.py

install-manifests-check:
	HELM=$(HELM) $(INSTALL_PY) hack/gen_install.py --check

policy-reference:
	$(INSTALL_PY) hack/gen_policy_reference.py

policy-reference-check:
	$(INSTALL_PY) hack/gen_policy_reference.py --check
