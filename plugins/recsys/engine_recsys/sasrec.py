"""SASRec (Kang & McAuley 2018): causal self-attention over a user's last items, scoring the next one.

Sequences are item indices shifted by one (0 pads), left-padded to a fixed length, oldest first
(`engine_recsys.source.InteractionSource.history`); a model that scores them implements
`ScoresSequences`, which the ranking task recognises: it hands such a model each evaluated user's
time-ordered history (training items for validation users, training plus validation item for test
users) instead of user ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Protocol, runtime_checkable

import torch
from annotated_types import Ge, Lt
from torch import nn
from torch.nn import functional as F


@runtime_checkable
class ScoresSequences(Protocol):
    """A model that scores every item as the next one of a time-ordered history."""

    def score_sequences(self, history: torch.Tensor) -> torch.Tensor:
        """``[B, num_items]`` scores from ``history`` ``[B, L]`` (item + 1, 0 pads on the left)."""
        ...


class SASRec(nn.Module):
    """Self-attentive sequential recommendation (SASRec, Kang & McAuley 2018).

    Each position of a user's last ``max_length`` items (learned position embeddings, counted from
    the end of the history) attends to itself and earlier items only (causal mask; padding is never
    attended to); the output at a position scores every item as the next one by its dot product with
    the item embeddings (shared between input and output). Trained on every prefix of each training
    history at once with ``loss=recsys.next_item_ce`` (full softmax cross-entropy over all items) and
    training rows of time-ordered windows (``data.sequence_length``, filled from ``max_length``).

    Args:
        num_users: number of users (from the data; users are represented by their items only).
        num_items: number of items (from the data).
        dim: embedding and hidden size.
        layers: self-attention blocks.
        heads: attention heads per block.
        max_length: the most recent items a user is represented by.
        dropout: dropout on embeddings, attention and feed-forward outputs.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: Annotated[int, Ge(1)] = 64,
        layers: Annotated[int, Ge(1)] = 2,
        heads: Annotated[int, Ge(1)] = 1,
        max_length: Annotated[int, Ge(2)] = 50,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.2,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items, self.max_length, self.heads = num_users, num_items, max_length, heads
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_length, dim)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=dim, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.items.weight, std=dim**-0.5)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.histories: Callable[[torch.Tensor], torch.Tensor] | None = None

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """``[B, L, dim]`` states of a left-padded history ``[B, L]``: position t sees items up to t."""
        seq = seq[:, -self.max_length :].long()
        length = seq.shape[1]
        pad = seq == 0
        pos = torch.arange(self.max_length - length, self.max_length, device=seq.device)
        h = self.items(seq) * math.sqrt(self.items.embedding_dim) + self.positions(pos)[None]
        h = self.drop(h) * (~pad)[..., None]
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).triu(1)
        blocked = causal[None] | (pad[:, None, :] & ~eye[None])  # True: not attended
        mask = torch.zeros(blocked.shape, device=seq.device).masked_fill(blocked, float("-inf"))
        h = self.encoder(h, mask=mask.repeat_interleave(self.heads, 0))
        return self.norm(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next-item logits ``[B, L, num_items]`` at every position of ``x`` ``[B, L]``."""
        return self.encode(x) @ self.items.weight[1:].T

    def score_sequences(self, history: torch.Tensor) -> torch.Tensor:
        """``[B, num_items]``: every item scored as the next one after each history."""
        return self.encode(history)[:, -1] @ self.items.weight[1:].T

    def set_histories(self, histories: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Where `score_all` reads a user's history (the task sets it to the whole known history)."""
        self.histories = histories

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, num_items]`` scores of users by their whole known history (``engine recommend``)."""
        if self.histories is None:
            raise RuntimeError("SASRec scores users from their histories: attach it to data first")
        return self.score_sequences(self.histories(users.cpu()).to(self.items.weight.device))


class NextItemCE(nn.Module):
    """Full softmax cross-entropy of the next item at every position (targets item + 1; 0 pads, ignored):
    logits ``[batch, length, items]`` and targets ``[batch, length]``, or one position per row
    (``[batch, items]``, ``[batch]``)."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.dim() == 2 and targets.dim() == 1:  # one position per row: [batch, items], [batch]
            logits, targets = logits[:, None], targets[:, None]
        if logits.dim() != 3 or targets.shape != logits.shape[:2]:
            raise ValueError(
                f"next_item_ce takes logits [batch, length, items] and targets [batch, length], got "
                f"{tuple(logits.shape)} and {tuple(targets.shape)}: use it with a sequential model (recsys.sasrec)"
            )
        return F.cross_entropy(
            logits.flatten(0, 1), targets.flatten().long() - 1, ignore_index=-1, label_smoothing=self.label_smoothing
        )


def next_item_ce(label_smoothing: Annotated[float, Ge(0), Lt(1)] = 0.0) -> nn.Module:
    """Full softmax cross-entropy over all items of each position's next item (sequential models).

    Args:
        label_smoothing: share of the target's probability spread over all items.
    """
    return NextItemCE(label_smoothing)
