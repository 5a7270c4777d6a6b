"""Which models DP-SGD cannot train, found at ``--dry-run`` without importing torch or the model.

Two rules, both read from the config and the model's source (never executed):

1. a model whose ``norm`` option (or ``batch_norm``/``bn`` switch) selects BatchNorm is refused,
   with the fix ``model.norm=group`` when the model offers that choice;
2. otherwise the model's source (its class or function and the module-level code it uses, in its
   module and the modules of its package it imports from) is scanned for the ``torch.nn`` layers
   Opacus cannot compute per-sample gradients for (BatchNorm, LSTM/GRU/RNN, MultiheadAttention and
   the transformer layers built on it). BatchNorm found in a model with a norm option is left to
   rule 1: that code is conditional on the option.

What the scan cannot see (a model built by a factory, code in another package) is caught when
training starts, by Opacus' ``ModuleValidator`` on the built model (`engine_privacy.validate`).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from engine import ConfigError

BATCHNORM = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d")
#: torch.nn layers Opacus refuses -> (why, the fix)
UNSUPPORTED: dict[str, tuple[str, str]] = {
    **{
        name: (
            "BatchNorm normalises each sample with its batch's statistics, so a sample's gradient depends on the "
            "others and cannot be clipped on its own",
            "replace it with GroupNorm or LayerNorm (Opacus' ModuleValidator.fix does that)",
        )
        for name in BATCHNORM
    },
    **{
        name: (
            f"nn.{name} runs its recurrence in fused kernels Opacus cannot take per-sample gradients of",
            f"use Opacus' DP{name} (opacus.layers), a drop-in replacement",
        )
        for name in ("LSTM", "GRU", "RNN")
    },
    **{
        name: (
            f"nn.{name} uses nn.MultiheadAttention, whose fused projections Opacus cannot take per-sample gradients of",
            "use Opacus' DPMultiheadAttention, or attention written with nn.Linear layers "
            "(as nlp.transformer_classifier and nlp.gpt are)",
        )
        for name in ("MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "Transformer")
    },
}
_BATCH_VALUES = ("batch", "batchnorm", "batch_norm", "bn")


def check_model(model: dict[str, Any], where: str) -> None:
    """Raise `ConfigError` when the configured model cannot be trained with DP-SGD."""
    name = model["name"]
    norm_keys = [k for k in model if k in ("norm", "normalization", "normalisation", "batch_norm", "bn")]
    for key in norm_keys:
        value = model[key]
        batch = value is True if key in ("batch_norm", "bn") else str(value).lower() in _BATCH_VALUES
        if batch:
            fix = f"model.{key}=false" if key in ("batch_norm", "bn") else f"model.{key}=group"
            raise ConfigError(
                f"{where}: {name} with model.{key}={value} uses BatchNorm, which DP-SGD cannot train: "
                f"{UNSUPPORTED['BatchNorm2d'][0]}",
                hint=f"set {fix} (GroupNorm is privacy-safe)"
                if key not in ("batch_norm", "bn")
                else f"set {fix}, or use a normalisation that works per sample (GroupNorm, LayerNorm)",
            )
    found = layers_used(name)
    if norm_keys:
        found = [f for f in found if f not in BATCHNORM]
    if found:
        layer = found[0]
        why, fix = UNSUPPORTED[layer]
        others = f" (also: {', '.join(found[1:])})" if len(found) > 1 else ""
        raise ConfigError(f"{where}: {name} contains nn.{layer}{others}, which DP-SGD cannot train: {why}", hint=fix)


def layers_used(component: str) -> list[str]:
    """The unsupported ``torch.nn`` layers the model component's source uses (empty when it cannot be read)."""
    import engine

    try:
        target = engine.get_registry().resolve("model", component).target
    except Exception:
        return []
    module, _, attr = target.partition(":")
    path = locate_module(module)
    if path is None or not attr:
        return []
    found: set[str] = set()
    _Scan(locate_module, found).visit_name(path, module, attr.split(".")[0], depth=0)
    return sorted(found, key=list(UNSUPPORTED).index)


def locate_module(module: str) -> Path | None:
    """The source file of ``module``, found without importing it (nor its packages, which may import torch).

    Only the top-level package's spec is looked up (``find_spec`` does not execute it); its
    sub-packages are found by walking the search locations.
    """
    import importlib.util

    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    locations = [Path(loc) for loc in spec.submodule_search_locations or []]
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        package = next((loc / part for loc in locations if (loc / part / "__init__.py").is_file()), None)
        if last and package is None:
            return next((loc / f"{part}.py" for loc in locations if (loc / f"{part}.py").is_file()), None)
        if package is None:
            return None
        if last:
            return package / "__init__.py"
        locations = [package]
    return None


class _Scan:
    """Walk a class or function and the module-level definitions it references (same package only)."""

    def __init__(self, locate: Any, found: set[str]) -> None:
        self.locate, self.found = locate, found
        self.seen: set[tuple[Path, str]] = set()
        self.trees: dict[Path, ast.Module | None] = {}

    def tree(self, path: Path) -> ast.Module | None:
        if path not in self.trees:
            try:
                self.trees[path] = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                self.trees[path] = None
        return self.trees[path]

    def visit_name(self, path: Path, module: str, name: str, depth: int) -> None:
        if (path, name) in self.seen or depth > 6:
            return
        self.seen.add((path, name))
        tree = self.tree(path)
        if tree is None:
            return
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        nn_names, imported = _imports(tree, module)
        node = defs.get(name)
        if node is None:
            return
        for sub in ast.walk(node):
            layer = _layer(sub, nn_names)
            if layer:
                self.found.add(layer)
            ref = sub.id if isinstance(sub, ast.Name) else None
            if ref in imported and imported[ref][0] == "torch.nn":
                self.found.add(imported[ref][1])
            elif ref in defs and ref != name:
                self.visit_name(path, module, ref, depth + 1)
            elif ref in imported and imported[ref][0].split(".")[0] == module.split(".")[0]:
                other, original = imported[ref]
                other_path = self.locate(other)
                if other_path is not None:
                    self.visit_name(other_path, other, original, depth + 1)


def _imports(tree: ast.Module, module: str) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Names bound to ``torch.nn`` (``nn``), and other imported names -> (module, original name)."""
    nn_names: set[str] = set()
    imported: dict[str, tuple[str, str]] = {}
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                bound = alias.asname or alias.name
                if base == "torch" and alias.name == "nn":
                    nn_names.add(bound)
                elif base == "torch.nn" and alias.name in UNSUPPORTED:
                    imported[bound] = ("torch.nn", alias.name)
                else:
                    imported[bound] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch.nn" and alias.asname:
                    nn_names.add(alias.asname)
    return nn_names, imported


def _layer(node: ast.AST, nn_names: set[str]) -> str | None:
    """``nn.BatchNorm2d`` / ``torch.nn.BatchNorm2d`` -> ``BatchNorm2d`` (an unsupported layer), else None."""
    if not isinstance(node, ast.Attribute) or node.attr not in UNSUPPORTED:
        return None
    value = node.value
    if isinstance(value, ast.Name) and value.id in nn_names:
        return node.attr
    if isinstance(value, ast.Attribute) and value.attr == "nn" and isinstance(value.value, ast.Name):
        return node.attr if value.value.id == "torch" else None
    return None
