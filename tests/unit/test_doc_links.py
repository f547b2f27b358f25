"""Every relative link in README.md and the docs leads somewhere: the file or directory exists
and, for `file.md#anchor`, the anchor is one of that file's headings (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted(
    p
    for p in [*REPO.glob("*.md"), *REPO.glob("*/*.md"), *REPO.glob("*/*/README.md")]
    if not p.relative_to(REPO).as_posix().startswith((".", "build/", "operator/"))
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", page.read_text())) if "://" not in t]


def test_the_pages_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "docs/security.md", "docs/recipes.md", "bench/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {broken}"


def test_slugs_follow_github() -> None:
    assert slug("0. One policy file, three ways to run it (compose, Podman, Kubernetes)") == (
        "0-one-policy-file-three-ways-to-run-it-compose-podman-kubernetes"
    )
    assert slug("Audit mode and its floor") == "audit-mode-and-its-floor"
    assert slug("`spec.ownership`: who made it") == "specownership-who-made-it"


# A path the reader is told to apply, run or read: `kubectl apply -f examples/policies/x.yaml`.
REPO_PATH = re.compile(
    r"(?<![\w/.$<{-])((?:bench|charts|crds|demo|deploy|docs|e2e|examples|hack|mk|operator|tests"
    r"|tools)/[\w./-]*)(?![\w./-]*[{<*])"
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_repository_paths_named_in_the_text_exist(page: Path) -> None:
    missing = {
        m.group(1).rstrip(".")
        for m in REPO_PATH.finditer(page.read_text())
        if not (REPO / m.group(1).rstrip(".")).exists()
    }
    assert not missing, f"{page.relative_to(REPO)} names paths that do not exist: {missing}"


def test_the_readme_leads_to_every_page_of_the_docs() -> None:
    readme = links(REPO / "README.md")
    linked = {t.partition("#")[0] for t in readme}
    pages = {p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")}
    assert pages <= linked, f"not linked from README.md: {sorted(pages - linked)}"
