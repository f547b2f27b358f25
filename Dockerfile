# docker-socket-operator: the filtering Docker API proxy (and the operator) in one image.
#
# Build with `make image` (or hack/image/build.sh): it makes the local Debian base image and the
# wheels this file installs from, then runs `docker build --network none`. RUN steps need no
# network; everything comes from build/wheels/ (see docs/image.md).
#
# Drop-in for tecnativa/docker-socket-proxy: the default command is `proxy`, which without
# --policy reads Tecnativa's environment variables, listens on 0.0.0.0:2375 and talks to
# $SOCKET_PATH (default /var/run/docker.sock). The image runs as uid/gid 65532: give it the
# socket's group (compose `group_add`, pod `securityContext.supplementalGroups`).

ARG BASE=dso-base:bookworm

FROM ${BASE} AS builder
# The legacy builder keeps this stage as a dangling image; build.sh prunes it by this label.
LABEL io.docker-socket-operator.stage=builder
COPY build/wheels/ /wheels/
COPY hack/image/rootfs.sh /usr/local/bin/dso-rootfs
# pip and setuptools leave the venv once the install is done: nothing imports them at run time.
# rootfs.sh then assembles /rootfs: Python, the venv (stripped), the libraries they load, the
# CA bundle and the licences; nothing else (no shell, no apt or dpkg, no pip).
RUN python3 -m venv /opt/dso \
 && /opt/dso/bin/pip install --no-index --no-cache-dir --find-links /wheels \
        --disable-pip-version-check 'docker-socket-operator[operator]' \
 && /opt/dso/bin/pip uninstall -q -y --disable-pip-version-check pip setuptools \
 && dso-rootfs

FROM scratch
ARG VERSION=0.0.0
ARG SOURCE=docker-socket-operator
LABEL org.opencontainers.image.title="docker-socket-operator" \
      org.opencontainers.image.description="Filtering Docker Engine API proxy (drop-in for tecnativa/docker-socket-proxy) and the Kubernetes operator that deploys it" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /rootfs/ /
# Bytecode was compiled at install time; a non-root process could not write it anyway.
ENV PATH=/opt/dso/bin:/usr/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# The final filesystem, as the image's own user, imports everything either role needs and
# makes a TLS context from the CA bundle: a missing library fails the build, not a pod.
RUN ["/opt/dso/bin/python", "-c", "import ssl, docker_socket_operator.cli, docker_socket_operator.controller.commands, kopf, aiohttp, pydantic, uvloop, yaml; ssl.create_default_context()"]
EXPOSE 2375 9102
ENTRYPOINT ["/opt/dso/bin/docker-socket-operator"]
CMD ["proxy"]
