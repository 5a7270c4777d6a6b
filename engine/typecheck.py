"""Does a config value fit a parameter's annotation (kept as text)?

:func:`check_type` understands the common annotations (``int``, ``float``, ``str``, ``bool``,
``list[int]``, ``tuple[int, ...]``, ``dict``, ``Literal[...]``, ``X | None``,
``Optional``/``Union``) and accepts anything it does not understand.
"""

from __future__ import annotations

import ast
from typing import Any

_NUMBERS = {"int": (int,), "float": (int, float), "complex": (int, float, complex)}


def check_type(value: Any, annotation: str | None) -> bool:
    """Whether ``value`` (plain Python data) fits ``annotation``; unknown types pass."""
    if annotation is None:
        return True
    try:
        node = ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return True
    return _check(value, node)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def _check(value: Any, node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return value is None
        if isinstance(node.value, str):  # a forward reference
            try:
                return _check(value, ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                return True
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _check(value, node.left) or _check(value, node.right)
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        inner = node.slice
        items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if outer in ("Optional",):
            return value is None or _check(value, items[0])
        if outer == "Union":
            return any(_check(value, i) for i in items)
        if outer == "Literal":
            return any(isinstance(i, ast.Constant) and i.value == value and type(i.value) is type(value) for i in items)
        if outer in ("list", "List", "Sequence", "MutableSequence", "Iterable", "Collection"):
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                return False
            return all(_check(v, items[0]) for v in value)
        if outer in ("tuple", "Tuple"):
            if not isinstance(value, (list, tuple)):
                return False
            if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is Ellipsis:
                return all(_check(v, items[0]) for v in value)
            return len(value) == len(items) and all(_check(v, i) for v, i in zip(value, items, strict=True))
        if outer in ("dict", "Dict", "Mapping", "MutableMapping"):
            if not isinstance(value, dict):
                return False
            if len(items) == 2:
                return all(_check(k, items[0]) and _check(v, items[1]) for k, v in value.items())
            return True
        return True
    name = _name(node)
    if name in _NUMBERS:
        return isinstance(value, _NUMBERS[name]) and not isinstance(value, bool)
    if name == "bool":
        return isinstance(value, bool)
    if name == "str":
        return isinstance(value, str)
    if name in ("list", "List", "Sequence"):
        return isinstance(value, (list, tuple))
    if name in ("tuple", "Tuple"):
        return isinstance(value, (list, tuple))
    if name in ("dict", "Dict", "Mapping"):
        return isinstance(value, dict)
    if name in ("Path", "PathLike"):
        return isinstance(value, str)
    if name == "None":
        return value is None
    return True
