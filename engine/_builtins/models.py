"""Built-in models."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Lt
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """A multi-layer perceptron: Linear → norm → activation → dropout, repeated.

    Args:
        in_features: size of each input vector (from the data).
        out_features: outputs: classes for classification, targets for regression (from the data).
        hidden: width of each hidden layer.
        dropout: dropout probability after each hidden layer.
        activation: one of relu, gelu, silu, tanh.
        norm: add LayerNorm after each hidden Linear.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[Annotated[int, Ge(1)]] = [128, 128],  # noqa: B006 - read-only, shown by `engine components show`
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        activation: Literal["relu", "gelu", "silu", "tanh"] = "relu",
        norm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h)]
            if norm:
                layers.append(nn.LayerNorm(h))
            layers += [_ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(nn.Flatten(), *layers)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.net(x)
