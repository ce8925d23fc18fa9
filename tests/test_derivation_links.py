"""docs/derivation.md and the code cite the same equations.

The document numbers every equation the code implements with ``\\tag{N.M}``; docstrings cite them
as ``(Eq. N.M)`` (or ``Eqs. N.M, N.M`` / ``Eqs. N.M-N.M``); the document's last section is a table
from each equation to the functions that implement it. These tests keep the three in step.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import rbmvae

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "derivation.md"
PACKAGE = Path(rbmvae.__file__).resolve().parent
TABLE_HEADING = "## Where each equation lives in the code"

# The numbering every module codes to (section: number of equations).
EXPECTED = {1: 20, 2: 8, 3: 11, 4: 3, 5: 9}

TAG = re.compile(r"\\tag\{(\d+\.\d+)\}")
CITATION = re.compile(r"\bEqs?\.\s*(\d+\.\d+(?:\s*(?:,|-|\u2013|and|to)\s*\d+\.\d+)*)")
NUMBER = re.compile(r"\d+\.\d+")
QUALNAME = re.compile(r"`(rbmvae(?:\.\w+)+)`")


def _key(number: str) -> tuple[int, int]:
    major, minor = number.split(".")
    return int(major), int(minor)


def cited_numbers(text: str) -> set[str]:
    """Every equation number cited in ``text``, with ranges such as ``Eqs. 1.11-1.14`` expanded."""
    found: set[str] = set()
    for match in CITATION.finditer(text):
        group = match.group(1)
        numbers = NUMBER.findall(group)
        found.update(numbers)
        for low, high in re.findall(r"(\d+\.\d+)\s*(?:-|\u2013|to)\s*(\d+\.\d+)", group):
            (major, first), (other, last) = _key(low), _key(high)
            assert major == other and first <= last, f"bad equation range {low}-{high}"
            found.update(f"{major}.{minor}" for minor in range(first, last + 1))
    return found


def document() -> str:
    return DOC.read_text(encoding="utf-8")


def tags() -> list[str]:
    return TAG.findall(document())


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (one leading and one trailing pipe removed)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def table_rows() -> dict[str, list[str]]:
    """``{equation number: [qualified names in the 'implemented in' column]}``."""
    text = document()
    assert TABLE_HEADING in text, f"{DOC.name} has no section {TABLE_HEADING!r}"
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.lstrip().startswith("|")]
    assert lines, "the code table is missing"
    header = [cell.lower() for cell in _cells(lines[0])]
    assert "implemented in" in header, f"no 'implemented in' column in {header}"
    column = header.index("implemented in")
    rows: dict[str, list[str]] = {}
    for line in lines[2:]:
        cells = _cells(line)
        assert len(cells) == len(header), (
            f"row with {len(cells)} cells, expected {len(header)}: {line}"
        )
        number = re.fullmatch(r"(?:Eq\.\s*)?(\d+\.\d+)", cells[0])
        assert number is not None, f"row without an equation number: {line}"
        assert number.group(1) not in rows, f"equation {number.group(1)} has two table rows"
        rows[number.group(1)] = QUALNAME.findall(cells[column])
    return rows


def resolve(qualname: str):
    """Import ``rbmvae.module.Class.method`` (the longest importable module prefix, then attributes)."""
    parts = qualname.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(qualname)


def package_sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE.parent)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_citation_parser_expands_lists_and_ranges():
    text = "see (Eq. 2.4), (Eqs. 1.5, 1.6) and Eqs. 1.11-1.14; not Eq 3.1 nor 3.2"
    assert cited_numbers(text) == {"2.4", "1.5", "1.6", "1.11", "1.12", "1.13", "1.14"}


def test_document_numbers_every_equation_once_in_order():
    numbers = tags()
    expected = [f"{s}.{m}" for s, count in EXPECTED.items() for m in range(1, count + 1)]
    assert numbers == expected


def test_every_tagged_equation_is_referable_in_the_text():
    text = TAG.sub("", document())
    referred = cited_numbers(text)
    missing = [number for number in tags() if number not in referred]
    assert not missing, f"equations never referred to as 'Eq. N.M' in the text: {missing}"


def test_every_citation_in_the_package_exists_in_the_document():
    numbers = set(tags())
    unknown = {
        name: sorted(cited_numbers(source) - numbers, key=_key)
        for name, source in package_sources().items()
    }
    unknown = {name: bad for name, bad in unknown.items() if bad}
    assert not unknown, f"the code cites equations that docs/derivation.md does not have: {unknown}"


def test_table_lists_every_equation_and_nothing_else():
    assert sorted(table_rows(), key=_key) == tags()


def test_table_rows_name_functions_that_cite_their_equation():
    rows = table_rows()
    implemented = {number: names for number, names in rows.items() if names}
    assert len(implemented) >= 20, "most equations should name the function implementing them"
    problems = []
    for number, names in implemented.items():
        for name in names:
            try:
                obj = resolve(name)
            except (ImportError, AttributeError):
                problems.append(f"{name} (listed for Eq. {number}) does not exist")
                continue
            doc = inspect.getdoc(obj) or ""
            if number not in cited_numbers(doc):
                problems.append(f"{name} does not cite Eq. {number} in its docstring")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["rbmvae.models.rbm.RBM.free_energy", "rbmvae.fit"])
def test_resolve_finds_functions_and_methods(name):
    assert callable(resolve(name))
