"""The parameter tables of docs/plugins/recsys.md against the signatures they describe (issue 37 item 6)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

import engine

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "recsys.md"
#: Cells that describe a default in words instead of the value.
WORDS = {"required": inspect.Parameter.empty, "recognised": None, "sniffed": None}


def _split(cell: str) -> list[str]:
    """``1, uniform, 0`` -> three cells; commas inside brackets (``[64, 32, 16]``) do not split."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(cell):
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            parts.append(cell[start:i].strip())
            start = i + 1
    return [*parts, cell[start:].strip()]


def documented_defaults() -> dict[str, dict[str, str]]:
    """``{component: {parameter: default cell}}`` of every ``| parameter | default | meaning |`` table under a heading
    naming a ``recsys.`` component."""
    out: dict[str, dict[str, str]] = {}
    component, in_table = None, False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            found = re.search(r"`(recsys\.[a-z_]+)`", line)
            component, in_table = (found[1] if found else None), False
        elif line.startswith("| parameter | default |"):
            in_table = component is not None
        elif in_table and line.startswith("| `"):
            names, default = (c.strip() for c in line.strip("|").split("|")[:2])
            names = [n.strip(" `") for n in names.split(",")]
            values = _split(default) if len(names) > 1 else [default]
            values = values * len(names) if len(values) == 1 else values  # one word for all: "recognised"
            assert len(values) == len(names), line
            out.setdefault(component, {}).update(zip(names, values, strict=True))
        elif in_table and not line.startswith("|"):
            in_table = False
    return out


def _target(name: str) -> object:
    for kind in ("model", "data", "task"):
        try:
            return engine.get_registry().resolve(kind, name).load()
        except engine.ConfigError:
            continue
    raise AssertionError(f"{name} is documented but not registered")


def test_documented_defaults_are_the_signatures() -> None:
    tables = documented_defaults()
    assert {"recsys.als", "recsys.ease", "recsys.mf", "recsys.interactions", "recsys.ranking"} <= set(tables)
    wrong = []
    for component, params in tables.items():
        signature = inspect.signature(_target(component))
        for name, cell in params.items():
            if name not in signature.parameters:
                wrong.append(f"{component}.{name}: documented, not a parameter")
                continue
            actual = signature.parameters[name].default
            doc = WORDS[cell] if cell in WORDS else yaml.safe_load(cell.strip("`"))
            doc = None if doc == "None" else doc
            same = doc == actual or (isinstance(actual, (list, tuple)) and list(actual) == doc)
            if not same:
                wrong.append(f"{component}.{name}: documented {cell}, the signature's default is {actual!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("cell, parts", [("1, uniform, 0", ["1", "uniform", "0"]), ("[10, 20]", ["[10, 20]"])])
def test_cells_split_outside_brackets(cell: str, parts: list[str]) -> None:
    assert _split(cell) == parts
