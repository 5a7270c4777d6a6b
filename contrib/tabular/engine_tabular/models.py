"""The embedding MLP: one learned vector per category, concatenated with the numeric features."""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge, Lt
from torch import nn


class EmbeddingMLP(nn.Module):
    """Categorical columns through embeddings, then an MLP over everything.

    Inputs are float vectors of the numeric features followed by the category
    codes (as the tabular data sources produce them).

    Args:
        num_numeric: number of numeric columns at the front of each input (from the data).
        cardinalities: categories per categorical column, code 0 included (from the data).
        out_features: classes, or 1 for regression (from the data).
        embed_dim: largest embedding size; a column with k categories gets min(embed_dim, k).
        hidden: width of each hidden layer.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        num_numeric: int,
        cardinalities: list[int],
        out_features: int,
        embed_dim: Annotated[int, Ge(1)] = 8,
        hidden: list[Annotated[int, Ge(1)]] = [128, 64],  # noqa: B006 - read-only default, shown by `engine components show`
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
    ) -> None:
        super().__init__()
        self.num_numeric = num_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(k, min(embed_dim, k)) for k in cardinalities)
        width = num_numeric + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = x[:, self.num_numeric :].long()
        parts = [x[:, : self.num_numeric]] + [emb(codes[:, j]) for j, emb in enumerate(self.embeddings)]
        return self.net(torch.cat(parts, 1))
