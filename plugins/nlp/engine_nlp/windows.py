"""Sliding-window evaluation: every token of a split scored once, each with up to a context of history.

Non-overlapping blocks (`engine_nlp.data.BlockDataset`) predict a block's first token from nothing and its last
from ``context - 1`` tokens: on average half a context of history. `ScoredWindows` overlaps the windows by
``context - stride`` tokens and hides the tokens an earlier window already scored (target ``-100``, which the
cross-entropy ignores and the language-modelling task does not count), so each token after the first window is
predicted with at least ``context - stride`` tokens of history. The last window ends at the last token: every
token but the very first is scored exactly once, and the split's mean loss is the loss of the whole text.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

#: The target of a position that is not scored (``torch.nn.functional.cross_entropy``'s ``ignore_index``).
IGNORE = -100


class BlockDataset(Dataset):
    """Consecutive blocks of ``block`` tokens: ``(ids[i*s : i*s+block], ids[i*s+1 : i*s+block+1])``."""

    def __init__(self, ids: torch.Tensor, block: int, stride: int) -> None:
        self.ids, self.block, self.stride = ids, block, stride
        self.n = max(0, (len(ids) - block - 1) // stride + 1)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        start = i * self.stride
        chunk = self.ids[start : start + self.block + 1]
        return chunk[:-1], chunk[1:]


class ScoredWindows(Dataset):
    """Windows of ``block`` tokens every ``stride`` tokens: ``(ids[s : s+block], targets)``; targets already scored
    by an earlier window are `IGNORE`. A text shorter than a block is one shorter window."""

    def __init__(self, ids: torch.Tensor, block: int, stride: int) -> None:
        if not 1 <= stride <= block:
            raise ValueError(f"the stride ({stride}) must be between 1 and the block ({block})")
        self.ids, self.block = ids, block
        n = len(ids) - 1  # targets: positions 1 .. len - 1
        starts = list(range(0, max(n - block, 0) + 1, stride))
        if starts[-1] + block < n:  # a last window ending at the last token
            starts.append(n - block)
        self.windows: list[tuple[int, int]] = []  # (start, first scored position in the window)
        scored_to = 0  # targets before this index are scored
        for s in starts:
            self.windows.append((s, scored_to - s))
            scored_to = min(s + block, n)

    def __len__(self) -> int:
        return len(self.windows) if len(self.ids) > 1 else 0

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start, first = self.windows[i]
        chunk = self.ids[start : start + self.block + 1]
        y = chunk[1:].clone()
        y[:first] = IGNORE
        return chunk[:-1], y
