"""Read a component's parameters without importing it.

Listing components, showing their parameters and validating a config must not
import torch, yet parameters are declared where Python users expect them: in the
target's signature and docstring.  We read them from the target's source with
:mod:`ast` (the module is located, never executed) and fall back to
:func:`inspect.signature` at build time when the source cannot be read.

Type annotations stay strings; :func:`engine._config.types.check_type` checks
config values against them.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine._config.docstrings import parse_param_docs

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
        for p in self.params:
            if p.name == name:
                return p
        return None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]


# --------------------------------------------------------------------------- locate


def locate_module(module: str) -> Path | None:
    """Path of ``module``'s source file, found without importing it.

    Only the top-level package's spec is looked up (which does not execute it);
    sub-packages are found by walking its search locations.
    """
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    locations = list(spec.submodule_search_locations or [])
    for i, part in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        found = None
        for loc in locations:
            pkg = Path(loc) / part
            if (pkg / "__init__.py").is_file():
                found = pkg
                break
            if last and (Path(loc) / f"{part}.py").is_file():
                return Path(loc) / f"{part}.py"
        if found is None:
            return None
        if last:
            return found / "__init__.py"
        locations = [str(found)]
    return None


_READ: list[Path] = []  # the files the current read parsed
_TREES: dict[Path, ast.Module] = {}


def _parse(path: Path) -> ast.Module | None:
    _READ.append(path)
    tree = _TREES.get(path)
    if tree is None:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
        _TREES[path] = tree
    return tree


# --------------------------------------------------------------------------- AST reading


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return REQUIRED
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        # A computed default (a call, a name): keep its text, it is informative.
        return Unevaluated(ast.unparse(node))


class Unevaluated(str):
    """A default we could not evaluate statically; shown as its source text."""


def _params_of_function(fn: ast.FunctionDef, skip: int, docs: dict[str, str]) -> Signature:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params: list[Param] = []
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if i < skip:
            continue
        params.append(_param(arg, default, docs))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(_param(arg, default, docs))
    return Signature(tuple(params), open=args.kwarg is not None)


def _param(arg: ast.arg, default: ast.expr | None, docs: dict[str, str]) -> Param:
    ann = ast.unparse(arg.annotation) if arg.annotation is not None else None
    if ann and ann[0] in "'\"":
        ann = ann.strip("'\"")
    return Param(arg.arg, ann, _literal(default), docs.get(arg.arg, ""))


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "dataclass":
            return True
    return False


def _params_of_class(cls: ast.ClassDef, tree: ast.Module, path: Path, depth: int) -> Signature | None:
    class_docs = parse_param_docs(ast.get_docstring(cls))
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            docs = {**class_docs, **parse_param_docs(ast.get_docstring(node))}
            return _params_of_function(node, 1, docs)
    if _is_dataclass(cls):
        params = []
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                ann = ast.unparse(node.annotation)
                if ann.startswith(("ClassVar", "typing.ClassVar")):
                    continue
                default = node.value
                if isinstance(default, ast.Call) and getattr(default.func, "id", "") == "field":
                    kw = {k.arg: k.value for k in default.keywords}
                    default = kw.get("default")
                    if default is None and "default_factory" in kw:
                        factory = kw["default_factory"]
                        empty = {"list": ast.List([], ast.Load()), "dict": ast.Dict([], [])}
                        if isinstance(factory, ast.Name) and factory.id in empty:
                            default = empty[factory.id]  # field(default_factory=list): the default is []
                        else:
                            default = ast.Call(factory, [], []) if not isinstance(factory, ast.Lambda) else factory.body
                params.append(Param(node.target.id, ann, _literal(default), class_docs.get(node.target.id, "")))
        return Signature(tuple(params))
    # No __init__ here: look at a base class defined or imported in this module.
    for base in cls.bases:
        if isinstance(base, ast.Name):
            sig = _find(tree, path, base.id, depth + 1)
            if sig is not None:
                return sig
    return None


def _resolve_import(tree: ast.Module, path: Path, name: str) -> tuple[Path, str] | None:
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) != name:
                    continue
                if node.level:
                    base = path.parent
                    for _ in range(node.level - 1):
                        base = base.parent
                    mod_path = base.joinpath(*(node.module or "").split(".")) if node.module else base
                    candidates = [mod_path.with_suffix(".py"), mod_path / "__init__.py"]
                    for c in candidates:
                        if c.is_file():
                            return c, alias.name
                    return None
                found = locate_module(node.module or "")
                return (found, alias.name) if found else None
    return None


def _find(tree: ast.Module, path: Path, name: str, depth: int = 0) -> Signature | None:
    if depth > 5:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _params_of_function(node, 0, parse_param_docs(ast.get_docstring(node)))
        if isinstance(node, ast.ClassDef) and node.name == name:
            return _params_of_class(node, tree, path, depth)
    imported = _resolve_import(tree, path, name)
    if imported is not None:
        sub = _parse(imported[0])
        if sub is not None:
            return _find(sub, imported[0], imported[1], depth + 1)
    return None


def read_signature(target: str) -> Signature | None:
    """Parameters of ``"module:attr"`` read from source, or ``None`` if unreadable.

    Results are cached on disk (``$ENGINE_CACHE_DIR``, default ``~/.cache/engine``)
    keyed by the source file's path, size and modification time, like ``.pyc`` files.
    """
    module, _, attr = target.partition(":")
    path = locate_module(module)
    if path is None:
        return None
    # Keyed by every file read (the target's module, and those it re-exports or inherits from).
    key = f"{path}:{attr}"
    cache = _disk_cache()
    entry = cache.get(key)
    if entry is not None and all(_stamp(Path(f)) == stamp for f, stamp in entry["files"]):
        return _decode(entry["signature"])
    _READ.clear()
    sig = _read_signature(path, attr)
    if sig is not None:
        cache[key] = {"signature": _encode(sig), "files": [[str(f), _stamp(f)] for f in dict.fromkeys(_READ)]}
        _save_cache()
    return sig


def _stamp(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _read_signature(path: Path, attr: str) -> Signature | None:
    tree = _parse(path)
    if tree is None:
        return None
    node_name, *rest = attr.split(".")
    if rest:  # "module:Class.method" — a method (classmethod/staticmethod too), inherited ones included
        return _method(tree, path, node_name, rest[-1])
    return _find(tree, path, node_name)


def _method(tree: ast.Module, path: Path, cls_name: str, method: str, depth: int = 0) -> Signature | None:
    """Parameters of ``cls_name.method`` (``self`` dropped), looking through base classes."""
    found = _class(tree, path, cls_name)
    if found is None or depth > 5:
        return None
    cls, tree, path = found
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == method:
            static = any(getattr(d, "id", "") == "staticmethod" for d in fn.decorator_list)
            return _params_of_function(fn, 0 if static else 1, parse_param_docs(ast.get_docstring(fn)))
    for base in cls.bases:
        if isinstance(base, ast.Name):
            sig = _method(tree, path, base.id, method, depth + 1)
            if sig is not None:
                return sig
    return None


def _class(tree: ast.Module, path: Path, name: str) -> tuple[ast.ClassDef, ast.Module, Path] | None:
    """The class ``name`` defined in (or imported into) the module ``tree``, with its own module."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node, tree, path
    imported = _resolve_import(tree, path, name)
    if imported is not None:
        sub = _parse(imported[0])
        if sub is not None:
            for node in sub.body:
                if isinstance(node, ast.ClassDef) and node.name == imported[1]:
                    return node, sub, imported[0]
    return None


# --------------------------------------------------------------------------- disk cache

_CACHE: dict[str, Any] | None = None
_CACHE_VERSION = 2


def _cache_file() -> Path:
    from engine._plugins.settings import cache_dir

    return cache_dir() / f"signatures-v{_CACHE_VERSION}.json"


def _disk_cache() -> dict[str, Any]:
    global _CACHE
    if _CACHE is None:
        try:
            _CACHE = json.loads(_cache_file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _CACHE = {}
    return _CACHE


def _save_cache() -> None:
    from engine._plugins.files import write_json_atomic

    try:
        write_json_atomic(_cache_file(), _CACHE)
    except OSError:
        pass  # a read-only home only costs speed


def _encode(sig: Signature) -> dict[str, Any]:
    params = []
    for p in sig.params:
        if p.required:
            default: list[Any] = ["required"]
        elif isinstance(p.default, Unevaluated):
            default = ["source", str(p.default)]
        else:
            default = ["value", repr(p.default)]
        params.append([p.name, p.annotation, default, p.doc])
    return {"params": params, "open": sig.open}


def _decode(data: dict[str, Any]) -> Signature:
    params = []
    for name, ann, default, doc in data["params"]:
        if default[0] == "required":
            value = REQUIRED
        elif default[0] == "source":
            value = Unevaluated(default[1])
        else:
            value = ast.literal_eval(default[1])
        params.append(Param(name, ann, value, doc))
    return Signature(tuple(params), data["open"])


def signature_from_object(obj: Any) -> Signature:
    """Parameters of an imported callable (the fallback when source is unavailable)."""
    import inspect

    sig = inspect.signature(obj)
    docs = parse_param_docs(inspect.getdoc(obj))
    if inspect.isclass(obj):
        docs = {**docs, **parse_param_docs(inspect.getdoc(obj.__init__))}
    params, open_ = [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        ann = None
        if p.annotation is not p.empty:
            ann = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
        default = REQUIRED if p.default is p.empty else p.default
        params.append(Param(p.name, ann, default, docs.get(p.name, "")))
    return Signature(tuple(params), open_)
