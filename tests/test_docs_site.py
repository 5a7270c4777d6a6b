"""The documentation site: API pages a reader can read, and a built site that browses from disk.

- The API reference's docstrings are Markdown (Google style, what mkdocstrings renders): no Sphinx roles.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: ([\w.]+)", flags=re.M)
#: Sphinx's cross-reference roles and field lists: raw text on a Markdown page.
SPHINX = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|obj|exc|data):`|^\s*:(?:param|type|returns?|rtype|raises)\b", re.M
)


def _source(name: str) -> Path | None:
    """The file defining module ``name`` or holding object ``name``: in engine/ or a plugin's package, unimported."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        rel = Path(*parts[:n])
        roots = (
            [ROOT] if parts[0] == "engine" else sorted((ROOT / "plugins").glob("*")) + sorted(ROOT.glob("contrib/*"))
        )
        for root in roots:
            for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def test_no_sphinx_roles_in_the_docstrings_the_api_pages_render() -> None:
    files = set(ROOT.glob("engine/**/*.py"))  # the kernel: its public names are defined all over it
    for page in REFERENCE.glob("*.md"):
        for name in DIRECTIVE.findall(page.read_text()):
            source = _source(name)
            assert source is not None, f"{page.name}: cannot find the source of {name}"
            files.add(source)
    assert any("engine_experiments" in str(f) for f in files)
    raw = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
        for f in sorted(files)
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if SPHINX.search(line)
    ]
    assert not raw, "Sphinx roles in docstrings rendered as Markdown (write `name` instead):\n" + "\n".join(raw)


def test_the_role_pattern_finds_roles() -> None:
    for text in (":class:`Run`", "see :func:`engine.plan`", ":meth:`x.y`", "    :param x: y", ":returns: z"):
        assert SPHINX.search(text), text
    for text in ("`Run`", "``engine.plan``", "Args:", "a: b", "https://x"):
        assert not SPHINX.search(text), text
