"""The documentation site that `make docs` builds into build/site (`mkdocs build --strict`),
opened from disk in chromium: no console errors, no request leaves the machine, the derivation's
equations and the tutorial's formulas rendered by the bundled MathJax (not raw TeX), the offline
search answers, and every public name of the API has its entry in the reference.

The site is built by `make docs`, which `make test` runs first; where it has not been built the
tests skip, unless CI=true or RBMVAE_REQUIRE_DOCS=1 (then they fail).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
LOCAL = ("file:", "data:", "blob:", "about:")
# Pages opened in the browser, and how many typeset formulas each must at least show.
PAGES = {
    "index.html": 0,
    "derivation.html": 300,
    "tutorial.html": 40,
    "results.html": 0,
    "reference/rbmvae.html": 0,
    "recipes.html": 0,
}
REFERENCE = {
    "rbmvae": "reference/rbmvae.html",
    "rbmvae.sklearn": "reference/sklearn.html",
    "rbmvae.study": "reference/study.html",
}


def test_readme_is_short_and_no_page_is_a_diary():
    """The README stays a five-minute read with its two set-up commands, and neither it nor a
    page of docs/ tells how the work was organised (no sessions, no dates)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count("\n") <= 150 and "make demo" in readme and "make test" in readme
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bsessions?\b", text, re.I), page.name
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), page.name


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        reason = "the documentation site is not built (make docs)"
        if os.environ.get("CI") == "true" or os.environ.get("RBMVAE_REQUIRE_DOCS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return SITE


def test_pages_load_nothing_from_elsewhere(site):
    """No script, style sheet, image or frame of any page is fetched from another machine."""
    fetched = re.compile(r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)="
                         r"[\"'](?:https?:)?//", re.I)  # fmt: skip
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 12
    remote = [p.relative_to(site).as_posix() for p in pages if fetched.search(p.read_text())]
    assert remote == []


def test_every_public_name_is_in_the_reference(site):
    for module_name, page in REFERENCE.items():
        module = importlib.import_module(module_name)
        ids = set(re.findall(r'id="([^"]+)"', (site / page).read_text(encoding="utf-8")))
        missing = [name for name in module.__all__ if f"{module_name}.{name}" not in ids]
        assert missing == [], f"{page} lacks {missing}"


def _open(context, page_name: str):
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto((SITE / page_name).as_uri())
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    return page, problems


@pytest.mark.browser
def test_site_offline_in_a_browser(site, browser):
    context = browser.new_context()
    outside: list[str] = []

    def only_local(route):  # every request is seen here; none may leave the machine
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    for name, formulas in PAGES.items():
        page, problems = _open(context, name)
        shown = page.evaluate(
            "() => [document.querySelectorAll('mjx-container svg').length, "
            "document.querySelectorAll('mjx-merror, [data-mjx-error]').length, "
            "document.querySelector('article').innerText]"
        )
        assert shown[0] >= formulas, f"{name}: {shown[0]} formulas typeset"
        assert shown[1] == 0, f"{name}: MathJax could not typeset {shown[1]} formula(s)"
        for raw in ("\\tag{", "\\frac{", "$$", "\\(", "\\["):
            assert raw not in shown[2], f"{name}: raw TeX {raw!r} left on the page"
        assert problems == [], f"{name}: {problems}"
        page.close()
    page, problems = _open(context, "derivation.html")
    first = page.evaluate(  # Eq. 1.1, the energy: an SVG display numbered (1.1)
        "() => { const m = document.querySelector('div.arithmatex mjx-container');"
        " return [m.getAttribute('display'), !!m.querySelector('svg g[data-mml-node=\"math\"]'),"
        " m.getBoundingClientRect().height, m.querySelector('mjx-assistive-mml').textContent]; }"
    )
    assert first[:2] == ["true", True] and first[2] > 20, first
    assert first[3].startswith("(1.1)E(v,h)=") and "\\" not in first[3], first
    page.keyboard.press("s")  # the offline search (its worker through iframe-worker's shim)
    page.keyboard.type("contrastive divergence")
    page.wait_for_selector(".md-search-result__item", timeout=10_000)
    assert problems == []
    page.close()
    assert outside == []
    context.close()
