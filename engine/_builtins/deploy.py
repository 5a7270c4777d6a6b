"""Built-in deployment targets needing only torch: TorchScript and torch.export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


class TorchScript:
    """Trace the model to TorchScript (``model.pt``), loadable with ``torch.jit.load`` without Python code.

    Args:
        method: ``trace`` records the ops run on the example input; ``script`` compiles the code.
    """

    tolerance = 1e-5

    def __init__(self, method: str = "trace") -> None:
        if method not in ("trace", "script"):
            from engine._contract.errors import ConfigError

            raise ConfigError(f"torchscript method must be 'trace' or 'script', got {method!r}")
        self.method = method

    def export(self, model: nn.Module, example_inputs: torch.Tensor, out_dir: Path) -> Path:
        model = model.eval()
        with torch.no_grad():
            program = torch.jit.trace(model, example_inputs) if self.method == "trace" else torch.jit.script(model)
        path = Path(out_dir) / "model.pt"
        program.save(str(path))
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        return torch.jit.load(str(path)).eval()


class Export:
    """Export with ``torch.export`` to an ExportedProgram (``model.pt2``), batch dimension dynamic.

    Args:
        dynamic_batch: let the batch size vary (otherwise fixed to the example's).
    """

    tolerance = 1e-5

    def __init__(self, dynamic_batch: bool = True) -> None:
        self.dynamic_batch = dynamic_batch

    def export(self, model: nn.Module, example_inputs: torch.Tensor, out_dir: Path) -> Path:
        model = model.eval()
        shapes = None
        if self.dynamic_batch:
            shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},)
        program = torch.export.export(model, (example_inputs,), dynamic_shapes=shapes)
        path = Path(out_dir) / "model.pt2"
        torch.export.save(program, str(path))
        return path

    def load(self, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
        return torch.export.load(str(path)).module()
