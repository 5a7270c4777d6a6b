"""Read a component's parameters from its target's source with `ast`, never importing it (torch-free).

`signature_from_object` is the fallback when the source cannot be read. Annotations stay text.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import importlib.util
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine._plugins.files import write_json_atomic
from engine._plugins.settings import cache_dir

REQUIRED: Any = type("REQUIRED", (), {"__repr__": lambda self: "<required>"})()


@dataclass(frozen=True)
class Param:
    """One parameter of a component: name, annotation (as text), default, doc."""

    name: str
    annotation: str | None = None
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Signature:
    """The user-settable parameters of a target; ``open`` if it takes ``**kwargs``."""

    params: tuple[Param, ...]
    open: bool = False

    def get(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]


class Unevaluated(str):
    """A default we could not evaluate statically; shown as its source text."""


_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:?\s*$")
_END = re.compile(r"^\s*(Returns?|Raises|Yields|Examples?|Notes?)\s*:?\s*$")
_ITEM = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def parse_param_docs(doc: str | None) -> dict[str, str]:
    """Map parameter name to its description from a Google- or NumPy-style docstring."""
    docs: dict[str, str] = {}
    inside, current, base = False, None, -1
    for line in (doc or "").expandtabs().splitlines():
        stripped = line.strip()
        if _SECTION.match(line):
            inside, current, base = True, None, -1
        elif inside and stripped and set(stripped) != {"-"}:  # a line of dashes: numpy's underline
            indent = len(line) - len(line.lstrip())
            base = indent if base < 0 else base
            if indent < base or _END.match(line):
                inside = False
            elif indent == base and (m := _ITEM.match(line)):
                current = m.group(1)
                docs[current] = m.group(3).strip()
            elif current is not None:
                docs[current] = (docs[current] + " " + stripped).strip()
    return docs


def locate_module(module: str) -> Path | None:
    """Path of ``module``'s source file, found without importing it (only the top package's spec is looked up)."""
    top, *parts = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    path = Path(spec.origin) if spec.origin else None
    locations = [Path(p) for p in spec.submodule_search_locations or []]
    for part in parts:
        candidates = (f for loc in locations for f in (loc / part / "__init__.py", loc / f"{part}.py"))
        path = next((f for f in candidates if f.is_file()), None)
        if path is None:
            return None
        locations = [path.parent] if path.name == "__init__.py" else []
    return path if path is not None and path.suffix == ".py" else None


_READ: list[Path] = []  # the files the current read parsed
_TREES: dict[Path, ast.Module] = {}


def _parse(path: Path) -> ast.Module | None:
    _READ.append(path)
    if path not in _TREES:
        try:
            _TREES[path] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
    return _TREES[path]


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return REQUIRED
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return Unevaluated(ast.unparse(node))  # a computed default (a call, a name): its text is informative


def _params_of_function(fn: ast.FunctionDef, skip: int, docs: dict[str, str]) -> Signature:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = [*list(zip(positional, defaults, strict=True))[skip:], *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    params = []
    for arg, default in pairs:
        ann = ast.unparse(arg.annotation) if arg.annotation is not None else None
        if ann and ann[0] in "'\"":  # a string annotation
            ann = ann.strip("'\"")
        params.append(Param(arg.arg, ann, _literal(default), docs.get(arg.arg, "")))
    return Signature(tuple(params), open=args.kwarg is not None)


def _dataclass_default(value: ast.expr | None) -> ast.expr | None:
    """The default of a dataclass field: ``field(default=...)``, ``field(default_factory=list)`` is ``[]``."""
    if not (isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field"):
        return value
    kw = {k.arg: k.value for k in value.keywords}
    factory = kw.get("default_factory")
    if "default" in kw or factory is None:
        return kw.get("default")
    if isinstance(factory, ast.Name) and factory.id in ("list", "dict"):
        return ast.List([], ast.Load()) if factory.id == "list" else ast.Dict([], [])
    return factory.body if isinstance(factory, ast.Lambda) else ast.Call(factory, [], [])


def _fields(cls: ast.ClassDef, docs: dict[str, str]) -> Signature:
    """A dataclass's fields (``ClassVar`` ones excepted) as its parameters."""
    fields = [
        Param(node.target.id, ann, _literal(_dataclass_default(node.value)), docs.get(node.target.id, ""))
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if not (ann := ast.unparse(node.annotation)).startswith(("ClassVar", "typing.ClassVar"))
    ]
    return Signature(tuple(fields))


def _definition(
    tree: ast.Module, path: Path, name: str, depth: int = 0
) -> tuple[ast.FunctionDef | ast.ClassDef, ast.Module, Path] | None:
    """The function or class ``name`` defined in (or imported into) the module ``tree``, with its own module."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node, tree, path
    imports = [
        (n, a) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names if (a.asname or a.name) == name
    ]
    if not imports or depth > 5:
        return None
    imported, alias = imports[0]
    if not imported.level:
        found = locate_module(imported.module or "")
    else:
        base = path.parents[imported.level - 1].joinpath(*(imported.module or "").split("."))
        found = next((c for c in (base.with_suffix(".py"), base / "__init__.py") if c.is_file()), None)
    if found is None or (sub := _parse(found)) is None:
        return None
    return _definition(sub, found, alias.name, depth + 1)


class _Aliases(ast.NodeTransformer):
    """Names of module-level aliases (``Fraction = Annotated[float, Ge(0), Lt(1)]``) replaced by what they name."""

    def __init__(self, tree: ast.Module) -> None:
        assigns = [n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Subscript)]
        self.aliases = {n.targets[0].id: n.value for n in assigns if [type(t) for t in n.targets] == [ast.Name]}
        self.open: set[str] = set()

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id not in self.aliases or node.id in self.open:
            return node
        self.open.add(node.id)  # an alias naming itself is left as it is
        try:
            return self.visit(copy.deepcopy(self.aliases[node.id]))  # type: ignore[no-any-return]
        finally:
            self.open.discard(node.id)


def _expand(sig: Signature, tree: ast.Module) -> Signature:
    """``sig`` with the annotations' module-level aliases written out (they are read as text)."""
    expand = _Aliases(tree)
    if not expand.aliases:
        return sig

    def text(annotation: str | None) -> str | None:
        try:
            return ast.unparse(expand.visit(ast.parse(annotation, mode="eval"))) if annotation else annotation
        except SyntaxError:
            return annotation

    return Signature(tuple(replace(p, annotation=text(p.annotation)) for p in sig.params), sig.open)


def _find(tree: ast.Module, path: Path, name: str, method: str | None = None, depth: int = 0) -> Signature | None:
    """Parameters of the function or class ``name`` (its ``__init__``, or ``method``), looking through base classes."""
    found = _definition(tree, path, name) if depth <= 5 else None
    if found is None:
        return None
    node, tree, path = found
    if isinstance(node, ast.FunctionDef):
        return (
            None if method else _expand(_params_of_function(node, 0, parse_param_docs(ast.get_docstring(node))), tree)
        )
    docs = parse_param_docs(ast.get_docstring(node)) if method is None else {}  # a class's docstring documents __init__
    for fn in node.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == (method or "__init__"):
            static = any(getattr(d, "id", "") == "staticmethod" for d in fn.decorator_list)
            sig = _params_of_function(fn, 0 if static else 1, docs | parse_param_docs(ast.get_docstring(fn)))
            return _expand(sig, tree)
    decorators = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
    if method is None and any(d.rpartition(".")[2] == "dataclass" for d in decorators):
        return _expand(_fields(node, docs), tree)
    for base in node.bases:
        if isinstance(base, ast.Name) and (sig := _find(tree, path, base.id, method, depth + 1)) is not None:
            return sig
    return None


def read_signature(target: str) -> Signature | None:
    """Parameters of ``"module:attr"`` read from source, or ``None`` if unreadable; cached on disk by the files read."""
    module, _, attr = target.partition(":")
    path = locate_module(module)
    if path is None:
        return None
    file = cache_dir() / "signatures-v3.json"
    key, cache = f"{path}:{attr}", _disk_cache(file)
    entry = cache.get(key)
    if entry is not None and all(_stamp(Path(f)) == stamp for f, stamp in entry["files"]):
        return _decode(entry["signature"])
    _READ.clear()
    name, *rest = attr.split(".")  # "module:Class.method": a method, inherited ones too
    tree = _parse(path)
    sig = None if tree is None else _find(tree, path, name, rest[-1] if rest else None)
    if sig is not None:
        cache[key] = {"signature": _encode(sig), "files": [[str(f), _stamp(f)] for f in dict.fromkeys(_READ)]}
        with contextlib.suppress(OSError):  # a read-only home only costs speed
            write_json_atomic(file, cache)
    return sig


def _stamp(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@functools.cache
def _disk_cache(file: Path) -> dict[str, Any]:
    """What the signature cache ``file`` holds, read once per process."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def _encode(sig: Signature) -> dict[str, Any]:
    def default(p: Param) -> list[Any]:
        if p.required:
            return ["required"]
        return ["source", str(p.default)] if isinstance(p.default, Unevaluated) else ["value", repr(p.default)]

    return {"params": [[p.name, p.annotation, default(p), p.doc] for p in sig.params], "open": sig.open}


_DECODE = {"required": lambda: REQUIRED, "source": Unevaluated, "value": ast.literal_eval}


def _decode(data: dict[str, Any]) -> Signature:
    params = [Param(name, ann, _DECODE[kind](*text), doc) for name, ann, (kind, *text), doc in data["params"]]
    return Signature(tuple(params), data["open"])


def signature_from_object(obj: Any) -> Signature:
    """Parameters of an imported callable (the fallback when source is unavailable)."""
    import inspect

    docs = parse_param_docs(inspect.getdoc(obj))
    if inspect.isclass(obj):
        docs |= parse_param_docs(inspect.getdoc(obj.__init__))
    params, open_ = [], False
    for p in inspect.signature(obj).parameters.values():
        open_ |= p.kind is p.VAR_KEYWORD
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        ann = None
        if p.annotation is not p.empty:
            ann = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
        params.append(Param(p.name, ann, REQUIRED if p.default is p.empty else p.default, docs.get(p.name, "")))
    return Signature(tuple(params), open_)
