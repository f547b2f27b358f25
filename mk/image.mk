# mk/image.mk -- the docker-socket-operator container image.
#
# Included by the main Makefile; can also be run on its own from the repository root:
#     make -f mk/image.mk image
#
# No container registry is reachable from the build machines, so the base is built locally
# (debootstrap bookworm + python3 -> dso-base:bookworm, rootfs cached in $(DSO_CACHE)/image),
# the wheels come from PyPI into build/wheels/, and `docker build --network none` installs them
# offline. DOCKER_HOST selects the daemon; `make image VERSION=x` or IMAGE=name:tag override
# the tag (VERSION is taken from pyproject.toml, not from the environment). See docs/image.md.

DSO_CACHE ?= /var/cache/docker-socket-operator
IMAGE_ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
VERSION       := $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' $(IMAGE_ROOT)/pyproject.toml | head -n1)
IMAGE_NAME    ?= docker-socket-operator
IMAGE         ?= $(IMAGE_NAME):$(VERSION)
IMAGE_SCRIPTS := $(IMAGE_ROOT)/hack/image

.PHONY: image image-base image-wheels

# base + wheels + docker build, all in one script so the integration test builds it the same way.
image:
	DSO_CACHE=$(DSO_CACHE) bash $(IMAGE_SCRIPTS)/build.sh $(IMAGE)

image-base:
	DSO_CACHE=$(DSO_CACHE) bash $(IMAGE_SCRIPTS)/base.sh

image-wheels:
	DSO_CACHE=$(DSO_CACHE) bash $(IMAGE_SCRIPTS)/wheels.sh $(IMAGE_ROOT)/build/wheels
