"""The layout of docs/architecture.md holds: imports go one way, no grab-bag files, no ``kind ==``.

Each module of the package belongs to one layer; a module may import from its own layer and the
layers above it in docs/architecture.md's list (lower numbers), never from a later one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import rbmvae

PACKAGE = Path(rbmvae.__file__).resolve().parent
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
MAX_FILE_LINES = 460
MAX_FUNCTION_LINES = 80
TABLE_FILES = {"cli/parser.py"}  # argparse tables: long by nature, exempt from the function limit

LAYERS = {
    0: ["basics", "_version"],
    1: ["data", "models"],
    2: ["training", "samplers", "likelihood", "zoo"],
    3: ["evaluation"],
    4: ["pages"],
    5: ["study", "tuning"],
    6: ["cli", "sklearn", "__init__", "__main__"],
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}
# The only modules at the top of src/rbmvae/: the package's entry points and its version.
TOP_MODULES = {"__init__", "__main__", "_version"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def entries(directory: Path) -> set[str]:
    """What a package directory holds: ``name`` for a module, ``name/`` for a folder."""
    found = set()
    for child in directory.iterdir():
        if child.name == "__pycache__" or child.name.endswith(".egg-info"):
            continue
        if child.is_dir():
            found.add(child.name + "/")
        elif child.suffix == ".py":
            found.add(child.stem)
    return found


def documented_tree(text: str) -> dict[str, set[str]]:
    """The tree block of docs/architecture.md: ``{top entry: the modules its first line names}``.

    An entry is a line indented by two spaces below ``src/rbmvae/``; a module (``__init__.py``)
    names nothing more, a package (``data/``) names its modules (``idx``) and folders
    (``sample_data/``) after it, space-separated; more deeply indented lines are descriptions."""
    block = text.split("```\nsrc/rbmvae/\n", 1)
    assert len(block) == 2, f"{ARCHITECTURE.name} has no code block starting with src/rbmvae/"
    tree = {}
    for line in block[1].split("```", 1)[0].splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name, *rest = line.split()
            if name.endswith(".py"):
                tree[name.removesuffix(".py")] = set()
            else:
                tree[name] = set(rest)
    return tree


def top_name(path: Path) -> str:
    """The first component of the module's dotted name inside the package (its layer key)."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_top_names(path: Path, root: Path = PACKAGE) -> set[str]:
    """First components of every ``rbmvae`` module that ``path`` (inside the package directory
    ``root``) imports, relative or absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    depth = len(path.relative_to(root).parts) - 1  # how many packages below rbmvae
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == "rbmvae":
                parts = node.module.split(".")[1:]
            elif node.level > 0:
                up = node.level - 1
                if up > depth:
                    continue
                own = list(path.relative_to(root).parts[:-1])
                base = own[: len(own) - up] if up else own
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # `from . import x` at the package root
                    parts = [alias.name for alias in node.names][:1]
            else:
                continue
            if parts:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bits = alias.name.split(".")
                if bits[0] == "rbmvae" and len(bits) > 1:
                    found.add(bits[1])
    return found


def test_every_module_has_a_layer():
    unknown = {top_name(p) for p in modules()} - set(LAYER_OF)
    assert not unknown, f"modules without a layer in docs/architecture.md: {sorted(unknown)}"


def test_only_the_entry_points_stay_at_the_top():
    top = {name for name in entries(PACKAGE) if not name.endswith("/")}
    assert top == TOP_MODULES, f"modules at the top of src/rbmvae/: {sorted(top - TOP_MODULES)}"


def test_the_architecture_page_shows_the_tree():
    """docs/architecture.md's tree names every top-level entry and every package's modules."""
    tree = documented_tree(ARCHITECTURE.read_text(encoding="utf-8"))
    assert set(tree) == entries(PACKAGE), (
        f"not on the page: {sorted(entries(PACKAGE) - set(tree))}; "
        f"on the page only: {sorted(set(tree) - entries(PACKAGE))}"
    )
    for name, listed in tree.items():
        if name.endswith("/"):
            held = entries(PACKAGE / name) - {"__init__"}
            assert listed == held, (
                f"{name}: the page lists {sorted(listed)}, it holds {sorted(held)}"
            )
    assert {name.removesuffix("/") for name in tree} == set(LAYER_OF)


def test_the_tree_check_sees_an_undocumented_module(tmp_path):
    """The checkers themselves: a stray top-level module and an unlisted package module are seen."""
    page = "```\nsrc/rbmvae/\n  __init__.py  the API\n  data/  idx\n      IDX files\n```\n"
    assert documented_tree(page) == {"__init__": set(), "data/": {"idx"}}
    (tmp_path / "data").mkdir()
    for name in ["__init__.py", "scoring.py", "data/__init__.py", "data/idx.py", "data/masks.py"]:
        (tmp_path / name).write_text("", encoding="utf-8")
    assert entries(tmp_path) == {"__init__", "scoring", "data/"}
    assert entries(tmp_path / "data") - {"__init__"} != documented_tree(page)["data/"]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_up_the_layers(path):
    own = LAYER_OF[top_name(path)]
    wrong = {
        name: LAYER_OF.get(name)
        for name in imported_top_names(path)
        if name in LAYER_OF and LAYER_OF[name] > own
    }
    assert not wrong, f"{path.name} (layer {own}) imports from later layers: {wrong}"


def test_the_layer_check_sees_a_wrong_import(tmp_path):
    """The checker itself: a layer-2 module importing the study, relatively or absolutely, and a
    subpackage module reaching up with ``..``, are all seen."""
    (tmp_path / "models").mkdir()
    (tmp_path / "training.py").write_text("from .study import run_study\n", encoding="utf-8")
    (tmp_path / "models" / "rbm.py").write_text("from ..cli import main\n", encoding="utf-8")
    (tmp_path / "idx.py").write_text("import rbmvae.evaluation\n", encoding="utf-8")
    assert imported_top_names(tmp_path / "training.py", tmp_path) == {"study"}
    assert imported_top_names(tmp_path / "models" / "rbm.py", tmp_path) == {"cli"}
    assert imported_top_names(tmp_path / "idx.py", tmp_path) == {"evaluation"}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_FILE_LINES, f"{path.name}: {text.count(chr(10))} lines"
    if str(path.relative_to(PACKAGE)) in TABLE_FILES:
        return
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_branching_on_the_model_kind():
    """What differs between model kinds is looked up in registries, never ``if kind == ...``."""
    # `model.kind == ...`, `kind == ...` and `getattr(model, "kind", None) == ...` (but not the
    # checks that a stored checkpoint's "kind" field matches, which compare data, not dispatch)
    pattern = re.compile(r'(\.kind|\bkind|"kind", None\))\s*(==|!=)')
    hits = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in modules()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"branches on the model kind: {hits}"
