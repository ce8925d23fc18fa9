"""MkDocs hooks of the documentation site (mkdocs.yml names this file).

- Files from outside ``docs/`` become assets of the site: the plots of ``benchmarks/``, MathJax
  and iframe-worker's shim (for the offline search on ``file://``), both
  installed from npm into ``build/npm`` by ``make docs``, so that nothing is fetched when the site
  is read.
- ``tuning.md`` joins the navigation where it exists.
- Every public name of ``rbmvae``, ``rbmvae.sklearn`` and ``rbmvae.study`` that is a class or a
  function must have a docstring: a missing one is a warning, which ``--strict`` makes an error.
- Sphinx roles in docstrings are shown as code; on the tutorial notebook's page, links to
  ``derivation.md`` point at the built page and nothing is loaded from a CDN.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
NPM = ROOT / "build" / "npm" / "node_modules"
# The site's files installed from npm by `make docs`: where each lies, and its name in the site.
NPM_ASSETS = {
    "mathjax/es5/tex-svg-full.js": "assets/mathjax/tex-svg-full.js",
    "mathjax/LICENSE": "assets/mathjax/LICENSE",
    "iframe-worker/shim/index.js": "assets/iframe-worker/shim.js",
    "iframe-worker/LICENSE": "assets/iframe-worker/LICENSE",
}
PUBLIC_MODULES = ("rbmvae", "rbmvae.sklearn", "rbmvae.study")
OPTIONAL_PAGES = {"tuning.md": ("Tuning", "Recipes")}  # page: (title, the entry it follows)
SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):(?=<code>)")
MARKDOWN_LINK = re.compile(r'href="(?![a-z][a-z0-9+.-]*:)([^"#]+)\.md(#[^"]*)?"')
MERMAID = re.compile(r"<script[^>]*>(?:(?!</script>).)*mermaid(?:(?!</script>).)*</script>", re.S)

log = logging.getLogger("mkdocs.plugins.rbmvae")


def on_config(config):
    """Add the optional pages that exist to the navigation."""
    docs = Path(config["docs_dir"])
    nav = config["nav"]
    for page, (title, after) in OPTIONAL_PAGES.items():
        listed = [value for entry in nav if isinstance(entry, dict) for value in entry.values()]
        if not (docs / page).exists() or page in listed:
            continue
        titles = [next(iter(entry)) for entry in nav if isinstance(entry, dict)]
        position = titles.index(after) + 1 if after in titles else len(nav)
        nav.insert(position, {title: page})
    return config


def _generated(config, uri: str, path: Path) -> File:
    return File.generated(config, uri, abs_src_path=str(path))


def on_files(files, config):
    """The benchmarks' plots, MathJax and iframe-worker's shim as files of the site."""
    for path in sorted((ROOT / "benchmarks").glob("*.png")):
        files.append(_generated(config, f"benchmarks/{path.name}", path))
    for source, uri in NPM_ASSETS.items():
        if not (NPM / source).exists():
            raise PluginError(
                f"{(NPM / source).relative_to(ROOT)} is missing: build the site with `make docs`, "
                "which installs MathJax and iframe-worker from npm"
            )
        files.append(_generated(config, uri, NPM / source))
    return files


def on_pre_build(config):
    """Warn (an error under --strict) for every public class or function without a docstring."""
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for public in getattr(module, "__all__", []):
            value = getattr(module, public)
            if (inspect.isclass(value) or inspect.isroutine(value)) and not value.__doc__:
                log.warning(f"{name}.{public} has no docstring (the API reference needs one)")


def on_page_content(html, page, config, files):
    """Docstrings' Sphinx roles (:func:`x`) shown as plain code; on the notebook's page, its
    links to Markdown pages pointed at the built pages, and nbconvert's loader of mermaid (from
    a CDN; the notebook has no diagrams) left out."""
    html = SPHINX_ROLE.sub("", html)
    if page.file.src_uri.endswith(".ipynb"):
        html = MERMAID.sub("", html)  # nbconvert's loader of mermaid from a CDN: no diagrams here
        html = MARKDOWN_LINK.sub(lambda match: _built_link(match, page, files), html)
    return html


def _built_link(match, page, files) -> str:
    """A notebook's link to ``page.md#anchor`` as the link to the built page (a page that does
    not exist is a warning, which --strict makes an error)."""
    target = files.get_file_from_path(f"{match.group(1)}.md")
    if target is None:
        log.warning(f"{page.file.src_uri} links to {match.group(1)}.md, which is not a page")
        return match.group(0)
    return f'href="{target.url_relative_to(page.file)}{match.group(2) or ""}"'
