"""``int8-weight``: int8 weight-only quantisation of the Linear layers with ``torchao`` (language models first).

Weights of ``nn.Linear`` layers are stored as int8 with one float scale per output row (symmetric, as torchao's
``Int8WeightOnlyConfig``); activations stay in float. For a language model on CPU the matrix products of
generation (one token at a time) read every weight once per token, so reading a quarter of the bytes is what
speeds it up; accuracy stays close (``engine deploy`` verifies the outputs, ``plugins/nlp/bench/quantised.py``
compares perplexity and tokens/s with fp32 and bf16).

Exported from a run (``engine deploy``), the artifact is plain data, no pickle: ``model.safetensors`` (int8
``<layer>.weight.int8`` and float ``<layer>.weight.scale`` for each quantised layer, every other tensor as it
was) and ``model.json`` (the model component and its settings, as the run built it). Loading builds the model
with `engine.create`, puts the int8 weights back (``int8 * scale``, exactly the values torchao quantises to the
same int8 again) and applies ``torchao.quantization.quantize_``: the loaded network is the model itself (for
``nlp.gpt`` generation keeps its KV cache), with torchao's int8 weight-only linear kernels. A bare model exported
without a run (the conformance kit) has no component to rebuild: its artifact is TorchScript with the
int8-rounded weights in float.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import ConfigError, EngineError

HINT = "pip install torchao  (int8 weight-only linear layers)"


def _config() -> Any:
    """torchao's int8 weight-only config, by the name of the installed version."""
    try:
        from torchao.quantization import quantize_  # noqa: F401
    except Exception as exc:  # missing, or installed but broken
        raise EngineError(f"the int8-weight target needs torchao, which cannot be imported ({exc})", hint=HINT) from exc
    import torchao.quantization as q

    if hasattr(q, "Int8WeightOnlyConfig"):
        return q.Int8WeightOnlyConfig()
    return q.int8_weight_only()  # torchao < 0.10


def quantize_linear(model: nn.Module) -> nn.Module:
    """``model`` with its Linear layers int8 weight-only (in place); ``nn.Linear`` outside, torchao inside."""
    from torchao.quantization import quantize_

    quantize_(model, _config())
    return model


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``(q [out, in] int8, scale [out] float32)`` with ``weight ~ q * scale``."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=torch.finfo(torch.float32).eps)
    q = torch.clamp(torch.round(w / scale[:, None]), -128, 127).to(torch.int8)
    return q, scale


class Int8Weight:
    """int8 weight-only Linear layers via torchao (``model.safetensors`` + ``model.json``; needs the run).

    Args:
        tolerance: largest absolute difference to the float model's outputs (logits) that still verifies.
        min_features: leave Linear layers with fewer input features in float (tiny layers gain nothing).
    """

    carries_network = True  # `CarriesNetwork`: the run is read for the model's settings, the artifact is the network

    def __init__(self, tolerance: float = 0.5, min_features: int = 16) -> None:
        if tolerance <= 0:
            raise ConfigError(f"int8-weight tolerance must be positive, got {tolerance}")
        if min_features < 1:
            raise ConfigError(f"int8-weight min_features must be >= 1, got {min_features}")
        self.tolerance, self.min_features = float(tolerance), int(min_features)
        self.run: Any = None
        self.report: dict[str, Any] = {}

    def use_run(self, run: Any) -> None:
        """The run's model section (component and settings): what ``load`` rebuilds the network from."""
        self.run = run

    def _layers(self, model: nn.Module) -> list[str]:
        return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.in_features >= self.min_features]

    def export(self, model: nn.Module, example_inputs: Any, out_dir: Path) -> Path:
        from safetensors.torch import save_file

        if self.run is None:  # a bare model (the conformance kit): the int8 values, in float, as TorchScript
            return _bare(model, example_inputs, Path(out_dir), self.min_features)
        _config()  # torchao importable, before anything is written
        layers = self._layers(model)
        if not layers:
            raise EngineError("int8-weight: the model has no Linear layer to quantise", hint="use the int8 target")
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        tied = _tied(model)
        tensors: dict[str, torch.Tensor] = {}
        for name, value in state.items():
            layer = name.removesuffix(".weight")
            if name.endswith(".weight") and layer in layers and name not in tied:
                tensors[f"{name}.int8"], tensors[f"{name}.scale"] = int8_rows(value)
            elif name not in tied:
                tensors[name] = value.clone()
        save_file(tensors, str(Path(out_dir) / "model.safetensors"))
        primary = self.run.plan().primary  # the task's primary slot: the network deployed
        settings = dict(primary.params)
        spec = {"component": primary.component.qualified_name, "settings": settings, "facts": _facts(self.run)}
        spec["tied"] = tied
        spec["layers"], spec["min_features"] = layers, self.min_features
        (Path(out_dir) / "model.json").write_text(json.dumps(spec, indent=1, default=str), encoding="utf-8")
        self.report = {"quantized_layers": len(layers), "weights_bytes": _sizes(state, tensors)}
        return Path(out_dir) / "model.safetensors"

    def load(self, path: Path) -> Callable[..., Any]:
        if Path(path).suffix == ".pt":  # exported without a run
            from engine_deploy.artifacts import load_torchscript

            return load_torchscript(Path(path))
        return load_int8_weight(Path(path).parent)


def load_int8_weight(directory: Path) -> nn.Module:
    """The network of an ``int8-weight`` artifact: the model rebuilt, its int8 weights put back, then torchao."""
    from safetensors.torch import load_file

    import engine

    spec = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    settings = {k: v for k, v in spec["settings"].items() if k not in ("init_from", "freeze")}
    for key, value in spec.get("facts", {}).items():
        settings.setdefault(key, value)
    model = _build(engine, spec["component"], settings)
    tensors = load_file(str(directory / "model.safetensors"))
    state: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        if name.endswith(".weight.int8"):
            base = name.removesuffix(".int8")
            state[base] = value.float() * tensors[f"{base}.scale"][:, None]
        elif not name.endswith(".weight.scale"):
            state[name] = value
    for alias, source in spec.get("tied", {}).items():
        state[alias] = state[source]
    model.load_state_dict(state)
    model.eval()
    layers = set(spec["layers"])
    from torchao.quantization import quantize_

    quantize_(model, _config(), filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in layers)
    return model


def _bare(model: nn.Module, example_inputs: Any, out_dir: Path, min_features: int) -> Path:
    """Without a run there is no component to rebuild: TorchScript of the model with its Linear weights rounded
    to their int8 values (the same outputs as torchao's, without its smaller, faster kernels)."""
    import copy

    rounded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in rounded.modules():
            if isinstance(module, nn.Linear) and module.in_features >= min_features:
                q, scale = int8_rows(module.weight)
                module.weight.copy_(q.float() * scale[:, None])
        program = torch.jit.trace(rounded, example_inputs)
    path = out_dir / "model.pt"
    program.save(str(path))
    return path


def _build(engine: Any, component: str, settings: dict[str, Any]) -> nn.Module:
    import inspect

    cls = engine.get_registry().resolve("model", component).load()
    params = inspect.signature(cls).parameters
    return engine.create("model", component, **{k: v for k, v in settings.items() if k in params})


def _tied(model: nn.Module) -> dict[str, str]:
    """State names sharing another's storage (tied embeddings): saved once, restored from the first name."""
    seen: dict[int, str] = {}
    tied: dict[str, str] = {}
    for name, value in model.state_dict(keep_vars=True).items():
        key = id(value)
        if key in seen:
            tied[name] = seen[key]
        else:
            seen[key] = name
    return tied


def _facts(run: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(run.facts).items() if isinstance(v, (int, float, str, bool))}


def _sizes(state: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    def size(ts: Any) -> int:
        return sum(t.numel() * t.element_size() for t in ts)

    return {"float32": size(state.values()), "int8-weight": size(tensors.values())}
