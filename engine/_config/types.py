"""Does a config value fit a parameter's annotation (kept as text)?

:func:`check_type` understands the common annotations (``int``, ``float``, ``str``, ``bool``,
``list[int]``, ``tuple[int, ...]``, ``dict``, ``Literal[...]``, ``X | None``,
``Optional``/``Union``) and accepts anything it does not understand.

**Ranges** are declared with ``typing.Annotated`` and ``annotated_types``' constraints, read from
the source like the rest of the annotation and checked at ``--dry-run``::

    from typing import Annotated
    from annotated_types import Ge, Gt, Lt

    def __init__(self, batch_size: Annotated[int, Ge(1)] = 64, dropout: Annotated[float, Ge(0), Lt(1)] = 0.1):

``Gt``, ``Ge``, ``Lt``, ``Le`` (bounds) and ``MinLen``, ``MaxLen`` (lengths) are understood.
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
        if outer == "Annotated":
            return _check(value, items[0]) and all(_holds(value, c) for c in items[1:])
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


_BOUNDS = {"Gt": (">", lambda v, b: v > b), "Ge": (">=", lambda v, b: v >= b)}
_BOUNDS |= {"Lt": ("<", lambda v, b: v < b), "Le": ("<=", lambda v, b: v <= b)}
_LENGTHS = {"MinLen": (">=", lambda n, b: n >= b), "MaxLen": ("<=", lambda n, b: n <= b)}


def _constraint(node: ast.expr) -> tuple[str, Any] | None:
    """``Ge(1)`` / ``Ge(ge=1)`` -> ``("Ge", 1)``; None for anything else."""
    if not isinstance(node, ast.Call) or _name(node.func) not in {**_BOUNDS, **_LENGTHS}:
        return None
    args = [*node.args, *(k.value for k in node.keywords)]
    if len(args) != 1:
        return None
    try:
        return _name(node.func), ast.literal_eval(args[0])
    except (ValueError, SyntaxError):
        return None


def _holds(value: Any, node: ast.expr) -> bool:
    found = _constraint(node)
    if found is None:
        return True  # metadata we do not understand
    name, bound = found
    try:
        if name in _LENGTHS:
            return _LENGTHS[name][1](len(value), bound)
        return value is None or _BOUNDS[name][1](value, bound)
    except TypeError:
        return True  # the type check reports what is wrong


def describe(annotation: str | None) -> str | None:
    """An annotation as a user reads it: ``Annotated[int, Ge(1)] | None`` -> ``int >= 1 | None``."""
    if annotation is None:
        return None
    try:
        return _describe(ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return annotation


def _describe(node: ast.expr) -> str:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return f"{_describe(node.left)} | {_describe(node.right)}"
    if isinstance(node, ast.Subscript) and _name(node.value) == "Literal":
        items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        return "one of " + ", ".join(ast.unparse(i) for i in items)
    if not isinstance(node, ast.Subscript):
        return ast.unparse(node)
    items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if _name(node.value) != "Annotated":  # list[...], dict[..., ...]: the items as read
        return f"{ast.unparse(node.value)}[{', '.join(_describe(i) for i in items)}]"
    bounds = []
    for item in items[1:]:
        found = _constraint(item)
        if found is not None:
            name, bound = found
            bounds.append(f"{'of length ' if name in _LENGTHS else ''}{(_BOUNDS | _LENGTHS)[name][0]} {bound}")
    return " ".join([_describe(items[0]), ", ".join(bounds)]).strip()
