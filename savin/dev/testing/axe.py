"""axe-core, the accessibility engine the page tests inject into each page.

Fetched from the npm package ``axe-core`` (integrity-checked) and cached
under ``$SAVIN_CACHE_DIR/axe-core``; later runs reuse it.
"""

from __future__ import annotations

from pathlib import Path

from savin.dev.testing.npm import cache_root, fetch_member

__all__ = ["VERSION", "WCAG_TAGS", "axe_path", "axe_source", "axe_violations"]

VERSION = "4.14.1"
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
MEMBER = "package/axe.min.js"

#: The rules a page must pass: WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


def _is_axe(content: bytes) -> None:
    if b"axe" not in content[:4096]:
        raise ValueError("not the axe-core script")


def axe_path() -> Path:
    return fetch_member(cache_root() / "axe-core" / f"axe-{VERSION}.min.js", TARBALL, INTEGRITY, MEMBER,
                        what="axe-core", check=_is_axe)


def axe_source() -> str:
    return axe_path().read_text(encoding="utf-8")


async def axe_violations(page, source: str | None = None) -> list[dict]:
    """The WCAG 2.1 A/AA violations axe-core finds on a Playwright page, each as
    ``{"id", "impact", "help", "targets"}``."""
    await page.add_script_tag(content=source or axe_source())
    found = await page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           targets: v.nodes.map(n => n.target.join(" "))}));
        }""", list(WCAG_TAGS))
    return found
