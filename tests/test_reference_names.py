"""Every ``docs/reference`` page lists, in plain Markdown, every public name of its module (issue 35, defect 9)."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("reference_names", ROOT / "scripts" / "reference_names.py")
assert SPEC is not None and SPEC.loader is not None
names = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(names)


@pytest.mark.parametrize("page", sorted(names.PAGES), ids=lambda p: p.removesuffix(".md"))
def test_each_reference_page_lists_every_public_name_with_a_description(page: str) -> None:
    text = (names.REFERENCE / page).read_text()
    assert names.START in text and names.END in text, f"{page}: run python scripts/reference_names.py"
    listed = dict(re.findall(r"^- `([\w.]+)`: (.+)$", text.split(names.START)[1].split(names.END)[0], flags=re.M))
    _, public = names.names_of(names.PAGES[page])
    missing = [n for n in public if n not in listed]
    assert not missing, f"{page} does not list {missing}: run python scripts/reference_names.py"
    assert all(len(d.split()) >= 2 for d in listed.values()), f"{page}: a one-line description per name"
    assert text.index(names.END) < text.index("\n::: ") if "\n::: " in text else True  # prose and names first


def test_every_public_module_has_its_page() -> None:
    modules = {spec.partition(":")[0] for spec in names.PAGES.values()}
    assert {"engine", "engine.data", "engine.protocols", "engine.tasks", "engine.runs", "engine.testing"} <= modules
