"""Does a config value fit a parameter's annotation (kept as text)? Anything not understood passes.

Understood: the common types, ``Literal``, unions, and ranges as ``Annotated`` with ``annotated_types``
(``Gt``, ``Ge``, ``Lt``, ``Le``, ``Interval``, ``MinLen``, ``MaxLen``; on list elements too). A float must be
finite unless its annotation carries ``"allow_inf_nan"`` (``Annotated[float, "allow_inf_nan"]``). A path that must
exist carries ``"existing_path"`` (``Annotated[str, "existing_path"]``): checked when a run is planned.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

#: What a bare annotation accepts (a bool is never a number).
_BARE: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "complex": (int, float, complex)}
_BARE |= {"bool": (bool,), "str": (str,), "Path": (str,), "PathLike": (str,), "None": (type(None),)}
_BARE |= dict.fromkeys(("list", "List", "Sequence", "tuple", "Tuple"), (list, tuple))
_BARE |= dict.fromkeys(("dict", "Dict", "Mapping"), (dict,))
_SEQUENCES = {"list", "List", "Sequence", "MutableSequence", "Iterable", "Collection"}
_MAPPINGS = {"dict", "Dict", "Mapping", "MutableMapping"}
_CONSTRAINTS = {"Gt": (">", operator.gt), "Ge": (">=", operator.ge), "Lt": ("<", operator.lt)}
_CONSTRAINTS |= {"Le": ("<=", operator.le), "MinLen": (">=", operator.ge), "MaxLen": ("<=", operator.le)}
_LENGTHS = {"MinLen", "MaxLen"}
_INTERVAL = {"gt": "Gt", "ge": "Ge", "lt": "Lt", "le": "Le"}
ALLOW_NONFINITE = "allow_inf_nan"  # the marker, in an annotation's metadata, of a float that may be inf or nan
EXISTING_PATH = "existing_path"  # the marker of a path (a file or a directory) that must exist


def check_type(value: Any, annotation: str | None) -> bool:
    """Whether ``value`` (plain Python data) fits ``annotation``; unknown types pass, non-finite floats do not."""
    if nonfinite(value) and ALLOW_NONFINITE not in (annotation or ""):
        return False
    if annotation is None:
        return True
    try:
        return _check(value, ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return True


def nonfinite(value: Any, text: bool = False) -> bool:
    """Whether ``value`` is, or holds, an inf or nan (``text``: or their text, ``x=inf`` reads as the string 'inf')."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return text and value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan")
    if isinstance(value, (list, tuple)):
        return any(nonfinite(v, text) for v in value)
    return isinstance(value, dict) and any(nonfinite(v, text) for v in value.values())


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def _items(node: ast.Subscript) -> list[ast.expr]:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def _check(value: Any, node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):  # a forward reference
            return check_type(value, node.value)
        return value is None if node.value is None else True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _check(value, node.left) or _check(value, node.right)
    if not isinstance(node, ast.Subscript):
        name = _name(node)
        return name not in _BARE or (isinstance(value, _BARE[name]) and (name == "bool" or not isinstance(value, bool)))
    outer, items = _name(node.value), _items(node)
    if outer == "Annotated":
        return _check(value, items[0]) and all(_holds(value, *c) for i in items[1:] for c in _constraints(i))
    if outer in ("Optional", "Union"):
        return (outer == "Optional" and value is None) or any(_check(value, i) for i in items)
    if outer == "Literal":
        return any(isinstance(i, ast.Constant) and i.value == value and type(i.value) is type(value) for i in items)
    if outer in _SEQUENCES or outer in ("tuple", "Tuple"):
        if not isinstance(value, (list, tuple)):
            return False
        if outer in _SEQUENCES or (len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is ...):
            return all(_check(v, items[0]) for v in value)
        return len(value) == len(items) and all(_check(v, i) for v, i in zip(value, items, strict=True))
    if outer in _MAPPINGS:
        if not isinstance(value, dict):
            return False
        return len(items) != 2 or all(_check(k, items[0]) and _check(v, items[1]) for k, v in value.items())
    return True


def _constraints(node: ast.expr) -> list[tuple[str, Any]]:
    """``Ge(1)`` / ``Ge(ge=1)`` -> ``[("Ge", 1)]``, ``Interval(gt=0, le=1)`` -> ``[("Gt", 0), ("Le", 1)]``; else []."""
    name = _name(node.func) if isinstance(node, ast.Call) else ""
    if name not in _CONSTRAINTS and name != "Interval":
        return []  # metadata we do not understand
    assert isinstance(node, ast.Call)
    args = [(name, a) for a in node.args] + [(_INTERVAL.get(k.arg or "", name), k.value) for k in node.keywords]
    try:
        found = [(n, ast.literal_eval(a)) for n, a in args]
    except (ValueError, SyntaxError):
        return []
    return (
        found if found and all(n in _CONSTRAINTS for n, _ in found) and (name == "Interval" or len(args) == 1) else []
    )


def _holds(value: Any, name: str, bound: Any) -> bool:
    try:
        if name in _LENGTHS:
            return _CONSTRAINTS[name][1](len(value), bound)
        return value is None or _CONSTRAINTS[name][1](value, bound)
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
    if not isinstance(node, ast.Subscript):
        return ast.unparse(node)
    outer, items = _name(node.value), _items(node)
    if outer == "Literal":
        return "one of " + ", ".join(ast.unparse(i) for i in items)
    if outer != "Annotated":  # list[...], dict[..., ...]: the items as read
        return f"{ast.unparse(node.value)}[{', '.join(_describe(i) for i in items)}]"
    found = dict(c for i in items[1:] for c in _constraints(i))
    lower, upper = [
        next(((n, found.pop(n)) for n in pair if n in found), None) for pair in (("Gt", "Ge"), ("Lt", "Le"))
    ]
    bounds = [f"{'of length ' if n in _LENGTHS else ''}{_CONSTRAINTS[n][0]} {b}" for n, b in found.items()]
    if lower and upper:  # float in [0, 1)
        bounds.insert(0, f"in {'[('[lower[0] == 'Gt']}{lower[1]}, {upper[1]}{'])'[upper[0] == 'Lt']}")
    else:
        bounds[:0] = [f"{_CONSTRAINTS[n][0]} {b}" for n, b in filter(None, (lower, upper))]
    extra = " (inf, nan allowed)" if any(_name(i) == ALLOW_NONFINITE for i in items[1:]) else ""
    extra += " (an existing path)" if any(_name(i) == EXISTING_PATH for i in items[1:]) else ""
    return " ".join([_describe(items[0]), ", ".join(bounds)]).strip() + extra
