"""Parameter descriptions from a Google- or NumPy-style docstring (``Args:`` / ``Parameters``)."""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:?\s*$")
_ITEM = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def parse_param_docs(doc: str | None) -> dict[str, str]:
    """Map parameter name to its description from a Google- or NumPy-style docstring."""
    if not doc:
        return {}
    docs: dict[str, str] = {}
    lines = doc.expandtabs().splitlines()
    inside = False
    current: str | None = None
    base_indent = 0
    for line in lines:
        if _SECTION.match(line):
            inside, current = True, None
            base_indent = -1
            continue
        if not inside:
            continue
        stripped = line.strip()
        if set(stripped) <= {"-"} and stripped:
            continue  # numpy underline
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent < 0:
            base_indent = indent
        if indent < base_indent or re.match(r"^\s*(Returns?|Raises|Yields|Examples?|Notes?)\s*:?\s*$", line):
            inside = False
            continue
        if indent == base_indent:
            m = _ITEM.match(line)
            if m:
                current = m.group(1)
                docs[current] = m.group(3).strip()
                continue
        if current is not None:
            docs[current] = (docs[current] + " " + stripped).strip()
    return docs
