"""Where the daemon fetches what a request names: image references and import sources.

`POST /images/create?fromSrc=<x>` is an import: dockerd downloads any URL it is given (from the
node's network: loopback services, cloud metadata), and Podman's compat handler hands the value
to libimage, which reads any other value as a path on the host (a tarball there becomes an image
the client can run or export). `fromImage` is a pull, but libimage also parses transports
(`docker-archive:/path`, `dir:/path`, `oci:...`) wherever the compat API's Docker Hub
normalisation is turned off. An image mount's `Source` is an image reference on dockerd, and
Podman makes a directory at any absolute `Source` of any mount type before it checks anything.
So each of these accepts only what stays inside the daemon's own image store: an import from
the request body (`-`), and plain Docker references or image IDs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# containers/image transports (alltransports): `<name>:<rest>` with one of these names is not a
# registry reference to libimage.
_TRANSPORTS = frozenset(
    {"containers-storage", "dir", "docker", "docker-archive", "docker-daemon", "oci",
     "oci-archive", "ostree", "sif", "tarball"}
)  # fmt: skip

# distribution/reference grammar: [domain[:port]/]path[:tag][@digest], lower-case path.
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?"
)
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")
TAG_OR_DIGEST = re.compile(rf"{_TAG}|{_DIGEST}")


def image_reference_reason(ref: Any, field: str) -> str | None:
    """None for a plain image reference (`alpine`, `registry:5000/a/b:tag@sha256:...`) or an
    image ID; else why it could name something outside the image store."""
    if not isinstance(ref, str):
        return f"{field} must be a string"
    if _IMAGE_ID.fullmatch(ref):
        return None
    m = _REFERENCE.fullmatch(ref)
    if m is None:
        return f"{field} {ref!r} is not a plain image reference"
    # `dir:5000/x` is a registry to Docker and the host directory `5000/x` to libimage, as is
    # `oci:x`; `docker:dind` is the docker image (that transport needs `docker://`).
    domain = m.group("domain") or ""
    head = ref.split(":", 1)[0] if ":" in ref and "/" not in ref.split(":", 1)[0] else ""
    for name in (domain.split(":", 1)[0], head):
        if name.lower() in _TRANSPORTS - {"docker"}:
            return f"{field} {ref!r} names an image transport, not a registry"
    return None


def images_create_reason(query: Mapping[str, str]) -> str | None:
    """POST /images/create: a pull of a plain reference, or an import of the request body."""
    source = query.get("fromSrc")
    if source not in (None, "", "-"):
        return (
            f"fromSrc {source!r}: only an import from the request body ('-') is allowed "
            "(the daemon would fetch a URL from the node's network, or read a host file)"
        )
    image = query.get("fromImage")
    if image:
        bad = image_reference_reason(image, "fromImage")
        if bad:
            return bad
    tag = query.get("tag")
    if tag and not TAG_OR_DIGEST.fullmatch(tag):
        return f"tag {tag!r} is not a tag or digest"
    return None
