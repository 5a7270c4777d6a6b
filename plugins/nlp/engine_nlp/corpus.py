"""Real text present on every machine: the running interpreter's own standard library sources.

- `stdlib_text`: the top-level ``*.py`` modules of ``sysconfig.get_paths()["stdlib"]`` in sorted
  file-name order, concatenated (each file followed by a blank line), cut at ``max_chars``. The same
  Python version gives the same corpus on every machine.
- `stdlib_snippets`: a labelled set for classification. Each sample is a snippet of
  ``lines_per_snippet`` consecutive non-blank source lines from a ``.py`` file of one of the
  `PACKAGES` below (tests folders excluded); its label is the package it comes from. Files are read in
  sorted order, snippets cut without overlap, and at most ``max_per_class`` snippets per package are kept,
  taken evenly across the package.
- `read_files`: the user's own text files instead (``nlp.text_files``' ``data.paths``).

No torch here.
"""

from __future__ import annotations

import glob
import sysconfig
from pathlib import Path

from engine import ConfigError

#: The standard-library packages whose code the ``nlp/classify`` recipe tells apart.
PACKAGES = ("asyncio", "email", "idlelib", "importlib", "multiprocessing", "tkinter", "unittest", "xml")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_text(max_chars: int | None = None) -> tuple[str, list[str]]:
    """The corpus text and the files it was read from."""
    texts, files, total = [], [], 0
    for file in sorted(stdlib_dir().glob("*.py")):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text + "\n\n")
        files.append(str(file))
        total += len(text) + 2
        if max_chars is not None and total >= max_chars:
            break
    corpus = "".join(texts)
    return (corpus[:max_chars] if max_chars is not None else corpus), files


def _is_test(path: Path, root: Path) -> bool:
    return any(part.startswith(("test", "idle_test")) for part in path.relative_to(root).parts[:-1])


def stdlib_snippets(
    packages: tuple[str, ...] | list[str] = PACKAGES, lines_per_snippet: int = 8, max_per_class: int = 600
) -> list[tuple[str, str]]:
    """``[(snippet, package), …]`` (see the module docstring)."""
    root = stdlib_dir()
    rows: list[tuple[str, str]] = []
    for package in packages:
        base = root / package
        snippets: list[str] = []
        for file in sorted(base.rglob("*.py")):
            if _is_test(file, base):
                continue
            try:
                lines = [ln.rstrip() for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()]
            except (OSError, UnicodeDecodeError):
                continue
            for i in range(0, len(lines) - lines_per_snippet + 1, lines_per_snippet):
                snippets.append("\n".join(lines[i : i + lines_per_snippet]))
        if len(snippets) > max_per_class:  # evenly spaced, deterministic
            step = len(snippets) / max_per_class
            snippets = [snippets[int(i * step)] for i in range(max_per_class)]
        rows += [(s, package) for s in snippets]
    return rows


def read_files(paths: list[str], max_chars: int | None) -> tuple[str, str]:
    """The text of ``paths`` (files, folders: every file below, globs; each sorted) joined by blank lines, cut to
    ``max_chars``, and a description of what was read; ConfigError for a pattern matching nothing or non-UTF-8."""
    files = _expand(list(paths))
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{f} is not UTF-8 text", hint="give only text files in data.paths") from None
    text = "\n\n".join(parts)
    described = ", ".join(str(f) for f in files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return (text[:max_chars] if max_chars is not None else text), described


def _expand(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for pattern in paths:
        p = Path(pattern).expanduser()
        if p.is_dir():
            matches = sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            matches = [p]
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
        if not matches:
            raise ConfigError(f"no text file matches '{pattern}'", hint="check data.paths (files, folders or globs)")
        files += matches
    return files
