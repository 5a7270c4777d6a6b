"""Deployment targets of the deploy plugin: TorchScript, torch.export, ONNX (onnxruntime), int8 quantization.

Each follows the ``engine_deploy_targets`` hookspec: ``export(model, example_inputs, out_dir) -> Path``,
``load(path) -> callable`` and ``tolerance``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from engine import ConfigError, EngineError
from engine_deploy.exporting import (
    Example,
    arguments,
    dynamic_shapes,
    explicit_masks,
    length_options,
    not_exportable,
    widened,
)

ONNX_HINT = "pip install 'engine-deploy[onnx]'  (onnx, onnxruntime and onnxscript)"


def require_onnx(*modules: str) -> None:
    """Raise one clear `EngineError` naming what to install when an ONNX package is missing."""
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # missing, or installed but broken
            missing.append(name)
    if missing:
        raise EngineError(
            f"the onnx target needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed "
            "(or cannot be imported)",
            hint=ONNX_HINT,
        )


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporter's progress prints and warnings (they are not the user's business)."""
    import io

    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch._dynamo")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class TorchScript:
    """Trace the model to TorchScript (``model.pt``), loadable with ``torch.jit.load`` without Python code.

    Args:
        method: ``trace`` records the ops run on the example input; ``script`` compiles the code.
    """

    tolerance = 1e-5

    def __init__(self, method: str = "trace") -> None:
        if method not in ("trace", "script"):
            raise ConfigError(f"torchscript method must be 'trace' or 'script', got {method!r}")
        self.method = method

    def export(self, model: nn.Module, example_inputs: Example, out_dir: Path) -> Path:
        model = model.eval()
        args = arguments(example_inputs)
        with torch.no_grad(), explicit_masks(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            program = torch.jit.trace(model, args) if self.method == "trace" else torch.jit.script(model)
        path = Path(out_dir) / "model.pt"
        program.save(str(path))
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        from engine_deploy.artifacts import load_torchscript

        return load_torchscript(Path(path))


class Export:
    """Export with ``torch.export`` to an ExportedProgram (``model.pt2``), batch dimension dynamic.

    Loading inspects the archive first and refuses pickled payloads (`engine_deploy.artifacts`).

    Args:
        dynamic_batch: let the batch size vary (otherwise fixed to the example's).
    """

    tolerance = 1e-5

    def __init__(self, dynamic_batch: bool = True) -> None:
        self.dynamic_batch = dynamic_batch

    def export(self, model: nn.Module, example_inputs: Example, out_dir: Path) -> Path:
        args = widened(arguments(example_inputs)) if self.dynamic_batch else arguments(example_inputs)
        for lengths in length_options(args, self.dynamic_batch):
            shapes = dynamic_shapes(args, 4096, lengths) if self.dynamic_batch else None
            try:
                with explicit_masks():
                    program = torch.export.export(model.eval(), args, dynamic_shapes=shapes)
                break
            except Exception as exc:
                if not lengths:
                    raise not_exportable("torch.export", exc) from exc
        path = Path(out_dir) / "model.pt2"
        torch.export.save(program, str(path))
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        from engine_deploy.artifacts import load_pt2  # refuses an archive holding pickles before torch reads it

        return load_pt2(Path(path))


class OnnxModel:
    """An ONNX Runtime session called like the model: tensor in, tensor out."""

    def __init__(self, path: Path, threads: int = 0, optimization: str = "all") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        levels = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        options.graph_optimization_level = levels[optimization]
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        feed = {n: a.detach().cpu().contiguous().numpy() for n, a in zip(self.input_names, args, strict=True)}
        return torch.from_numpy(self.session.run([self.output_name], feed)[0])


class Onnx:
    """Export to ONNX (``model.onnx``, batch dimension dynamic), check it with onnx.checker, run it with ONNX Runtime.

    Args:
        opset: ONNX opset version to target.
        dynamic_batch: let the batch size vary (otherwise fixed to the example's).
        threads: ONNX Runtime intra-op threads when the artifact is loaded (0: its default, all cores).
        optimization: ONNX Runtime graph optimization level: none, basic, extended or all.
    """

    tolerance = 1e-4

    def __init__(
        self,
        opset: int = 18,
        dynamic_batch: bool = True,
        threads: int = 0,
        optimization: Literal["none", "basic", "extended", "all"] = "all",
    ) -> None:
        if not 7 <= opset <= 30:
            raise ConfigError(f"onnx opset must be between 7 and 30, got {opset}", hint="for example --opset 18")
        if threads < 0:
            raise ConfigError(f"onnx threads must be >= 0, got {threads}")
        if optimization not in ("none", "basic", "extended", "all"):
            raise ConfigError(f"onnx optimization must be none, basic, extended or all, got {optimization!r}")
        self.opset, self.dynamic_batch, self.threads, self.optimization = opset, dynamic_batch, threads, optimization

    def export(self, model: nn.Module, example_inputs: Example, out_dir: Path) -> Path:
        require_onnx("onnx", "onnxscript")
        import onnx

        model = model.eval()
        path = Path(out_dir) / "model.onnx"
        args = widened(arguments(example_inputs)) if self.dynamic_batch else arguments(example_inputs)
        names = ["input"] if len(args) == 1 else [f"input{i}" for i in range(len(args))]
        for lengths in length_options(args, self.dynamic_batch):
            shapes = dynamic_shapes(args, 65536, lengths) if self.dynamic_batch else None
            try:
                with _quiet_export(), torch.no_grad(), explicit_masks():
                    torch.onnx.export(
                        model,
                        args,
                        str(path),
                        dynamo=True,
                        dynamic_shapes=shapes,
                        input_names=names,
                        output_names=["output"],
                        opset_version=self.opset,
                        external_data=False,
                        verbose=False,
                    )
                break
            except EngineError:
                raise
            except Exception as exc:
                if not lengths:
                    raise not_exportable("ONNX", exc) from exc
        try:
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        except Exception as exc:
            raise EngineError(f"onnx.checker rejected the exported model: {exc}") from exc
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        require_onnx("onnxruntime")
        try:
            return OnnxModel(Path(path), self.threads, self.optimization)
        except Exception as exc:  # not an ONNX model (ONNX Runtime checks external data stays in its directory)
            from engine_deploy.artifacts import load_failed

            raise load_failed(Path(path), "ONNX", exc) from exc


_LAYERS: dict[str, type[nn.Module]] = {"linear": nn.Linear, "lstm": nn.LSTM, "gru": nn.GRU}


def quantize(model: nn.Module, layers: list[str]) -> nn.Module:
    """A dynamically int8-quantized copy of ``model`` (weights int8, activations quantized on the fly)."""
    import copy

    unknown = [name for name in layers if name not in _LAYERS]
    if unknown or not layers:
        raise ConfigError(f"int8 layers must be some of {', '.join(_LAYERS)}, got {layers}")
    engines = torch.backends.quantized.supported_engines
    for engine in ("fbgemm", "x86", "qnnpack"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(
            copy.deepcopy(model).eval(), {_LAYERS[n] for n in layers}, dtype=torch.qint8, inplace=False
        )


def count_quantized(model: nn.Module) -> int:
    """Number of dynamically quantized modules in ``model``."""
    return sum(1 for m in model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic"))


class Int8:
    """Dynamic int8 quantization of Linear / LSTM / GRU layers, saved as TorchScript (``model.pt``).

    Weights are stored as int8 and activations quantized on the fly: about 4x smaller
    layers and faster matrix products on CPU, at a small cost in accuracy (``engine deploy``
    reports the size before/after and the test metric eager vs quantized).

    Args:
        layers: layer types to quantize: any of linear, lstm, gru.
        tolerance: largest absolute difference to the float model's outputs that still verifies.
    """

    def __init__(self, layers: list[str] = ["linear", "lstm", "gru"], tolerance: float = 0.5) -> None:  # noqa: B006
        unknown = [name for name in layers if name not in _LAYERS]
        if unknown or not layers:
            raise ConfigError(
                f"int8 layers must be some of {', '.join(_LAYERS)}, got {layers}", hint="for example layers=[linear]"
            )
        if tolerance <= 0:
            raise ConfigError(f"int8 tolerance must be positive, got {tolerance}")
        self.layers, self.tolerance = list(layers), float(tolerance)
        self.quantized_layers = 0
        self.report: dict[str, Any] = {}

    def export(self, model: nn.Module, example_inputs: Example, out_dir: Path) -> Path:
        qmodel = quantize(model.eval(), self.layers)
        self.quantized_layers = count_quantized(qmodel)
        from engine_deploy.common import state_size

        self.report = {
            "quantized_layers": self.quantized_layers,
            "weights_bytes": {"float32": state_size(model), "int8": state_size(qmodel)},
        }
        if self.quantized_layers == 0:
            raise EngineError(
                f"int8: the model has no {'/'.join(self.layers)} layer to quantize",
                hint="dynamic quantization covers Linear, LSTM and GRU layers; use the onnx or export target instead",
            )
        path = Path(out_dir) / "model.pt"
        args = arguments(example_inputs)
        with warnings.catch_warnings(), torch.no_grad(), explicit_masks():
            warnings.simplefilter("ignore")
            try:
                program = torch.jit.trace(qmodel, args, check_trace=False)
            except Exception:
                try:
                    program = torch.jit.script(qmodel)
                except Exception as exc:
                    raise _int8_failed(model, exc) from None
        program.save(str(path))
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        from engine_deploy.artifacts import load_torchscript

        return load_torchscript(Path(path))


def _int8_failed(model: nn.Module, exc: Exception) -> EngineError:
    """One line for a quantised model TorchScript cannot save (quantised ``nn.Transformer*`` layers)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    kinds = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _ATTENTION)})
    why = f"its {'/'.join(kinds)} layers" if kinds else "the quantised model"
    return EngineError(
        f"int8: TorchScript cannot save {why} once quantised ({type(exc).__name__}: {first})",
        hint="deploy this run with --target onnx, export or torchscript (float); dynamic int8 suits models built "
        "of Linear/LSTM/GRU layers",
    )


_ATTENTION = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def describe(target: Any) -> dict[str, Any]:
    """Options of a built target as plain data (what its constructor was given)."""
    import inspect

    params = inspect.signature(type(target).__init__).parameters
    return {n: getattr(target, n) for n in params if n != "self" and hasattr(target, n)}
