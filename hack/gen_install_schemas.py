"""kubeconform schemas exported from a live API server, for validating the install offline.

kubeconform downloads its JSON schemas from GitHub at run time. With no network, this script
asks an API server (any cluster, or the test control plane) for its OpenAPI v3 documents and
writes one strict, standalone JSON schema per kind -- CRDs included, so our own
DockerSocketPolicy is checked too -- named the way kubeconform looks them up:

    python hack/gen_install_schemas.py --out /tmp/schemas [--kubeconfig FILE]
    kubeconform -strict -schema-location '/tmp/schemas/{{.ResourceKind}}{{.KindSuffix}}.json' \\
        deploy/install.yaml

"Strict" as kubeconform's own `-strict` schemas: every object with declared properties
refuses unknown ones (unless it preserves unknown fields).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Fetch = Callable[[str], dict[str, Any]]

SCHEMA_LOCATION = "{{.ResourceKind}}{{.KindSuffix}}.json"


def find_kubeconform() -> str | None:
    cache = Path(os.environ.get("DSO_CACHE", "/var/cache/docker-socket-operator")) / "bin"
    for candidate in (shutil.which("kubeconform"), str(cache / "kubeconform")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def schema_filename(group: str, version: str, kind: str) -> str:
    """kubeconform's `{{.ResourceKind}}{{.KindSuffix}}`: deployment-apps-v1, namespace-v1."""
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json".lower()


def _standalone(node: Any, components: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """Inline every $ref, make `nullable` JSON-schema, close objects (strict)."""
    if isinstance(node, list):
        return [_standalone(item, components, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:  # recursive types (JSONSchemaProps): accept anything below
            return {}
        return _standalone(components[name], components, (*stack, name))
    out = {
        # `properties` maps field names (JSONSchemaProps has one called "$ref") to schemas.
        k: {n: _standalone(sub, components, stack) for n, sub in v.items()}
        if k == "properties" and isinstance(v, dict)
        else _standalone(v, components, stack)
        for k, v in node.items()
    }
    if len(out.get("allOf", [])) == 1 and set(out) - {"allOf"} <= {"default", "description"}:
        out = {**out.pop("allOf")[0], **out}  # `allOf: [$ref]` only carries a default
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def export_schemas(fetch: Fetch, out: Path) -> list[Path]:
    """Write one schema per kind the server serves (fetch: URL path -> parsed JSON)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for entry in fetch("/openapi/v3")["paths"].values():
        doc = fetch(entry["serverRelativeURL"])
        components = doc.get("components", {}).get("schemas", {})
        for schema in components.values():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                path = out / schema_filename(gvk["group"], gvk["version"], gvk["kind"])
                if path in written:
                    continue
                standalone = _standalone(schema, components)
                standalone["$schema"] = "http://json-schema.org/draft-07/schema#"
                path.write_text(json.dumps(standalone, indent=1, sort_keys=True))
                written.append(path)
    return written


def kubectl_fetch(kubectl: str = "kubectl", kubeconfig: str | None = None) -> Fetch:
    def fetch(url: str) -> dict[str, Any]:
        args = [kubectl, "get", "--raw", url]
        if kubeconfig:
            args += ["--kubeconfig", kubeconfig]
        text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        result: dict[str, Any] = json.loads(text)
        return result

    return fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args(argv)
    written = export_schemas(kubectl_fetch(kubeconfig=args.kubeconfig), args.out)
    print(f"{len(written)} schemas in {args.out}; -schema-location '{args.out}/{SCHEMA_LOCATION}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
