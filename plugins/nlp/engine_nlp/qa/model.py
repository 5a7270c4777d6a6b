"""``nlp.span_qa``: ``nlp.transformer_classifier``'s encoder with a start/end logit per token.

The same parameters under the same names as the classifier (token and position embeddings, blocks, final
norm, a [CLS] slot in front), so the classifier's weights and its adapters apply: ``model.init_from`` a
``nlp.transformer_classifier`` run, or a ``nlp.gpt`` pre-training run (through `gpt_to_classifier`).
A segment embedding (zero at the start: a loaded encoder computes what it did) marks the context after the
separator, a match embedding (zero at the start too) marks the context tokens whose id occurs in the question
(DrQA's exact-match feature: the name asked about, the fact's words), and the head gives 2 logits per token;
positions outside the context are masked out. With ``rotary`` the attention also sees relative positions.
Without the match feature and relative positions, a small encoder did not learn (in 750 steps) to tell which
person a question names: it answered the asked kind of fact of whoever came first (issue 35).
"""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge, Lt
from torch import nn

from engine_nlp.models import Rotary, TransformerClassifier

State = dict[str, torch.Tensor]
MASKED = -1e4


class SpanQA(TransformerClassifier):
    """Start and end logits ``[batch, tokens, 2]`` over ``question <sep> context`` ids (padding on the right).

    Args:
        vocab_size: the tokenizer's vocabulary (from the data).
        context_length: tokens per sample (from the data).
        pad_id: the padding id (from the data).
        sep_id: the separator between question and context (from the data); None: every token is context.
        n_layer: transformer blocks.
        n_head: attention heads per block.
        d_model: width (a multiple of n_head).
        mlp_ratio: MLP width as a multiple of d_model.
        dropout: dropout in the blocks.
        rotary: rotary positions in attention as well (relative offsets: a value finds the name of its own
            sentence, a few tokens away, wherever the sentence is); no parameters, so weights load either way.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        pad_id: int,
        sep_id: int | None = None,
        n_layer: Annotated[int, Ge(1)] = 2,
        n_head: Annotated[int, Ge(1)] = 4,
        d_model: Annotated[int, Ge(1)] = 128,
        mlp_ratio: Annotated[int, Ge(1)] = 4,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        rotary: bool = False,
    ) -> None:
        super().__init__(vocab_size, 2, context_length, pad_id, n_layer, n_head, d_model, mlp_ratio, dropout)
        self.sep_id = sep_id
        self.seg_emb = nn.Embedding(2, d_model)
        nn.init.zeros_(self.seg_emb.weight)
        self.match_emb = nn.Embedding(2, d_model)  # context tokens that occur in the question (a name asked about)
        nn.init.zeros_(self.match_emb.weight)
        if rotary:
            shared = Rotary(d_model // n_head, context_length + 1)
            for block in self.blocks:
                block.attn.rotary = shared

    def context_mask(self, idx: torch.Tensor) -> torch.Tensor:
        """``[B, T]``: True on context tokens (after the first separator, not padding)."""
        real = idx != self.pad_id
        if self.sep_id is None:
            return real
        after = (idx == self.sep_id).long().cumsum(1) > 0
        return real & after & (idx != self.sep_id)

    def in_question(self, idx: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``[B, T]``: True on context tokens whose id occurs in the question (DrQA's exact-match feature)."""
        if self.sep_id is None:
            return torch.zeros_like(context)
        question = (idx != self.pad_id) & ((idx == self.sep_id).long().cumsum(1) == 0)
        same = (idx[:, :, None] == idx[:, None, :]) & question[:, None, :]
        return same.any(-1) & context

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx[:, : self.context_length]
        b, t = idx.shape
        context = self.context_mask(idx)
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=idx.device), idx != self.pad_id], 1)
        x = self.tok_emb(idx) + self.seg_emb(context.long()) + self.match_emb(self.in_question(idx, context).long())
        x = torch.cat([self.cls.expand(b, -1, -1), x], 1)
        x = self.drop(x + self.pos_emb.weight[: t + 1])
        mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, causal=False, mask=mask)
        logits = self.head(self.ln_f(x)[:, 1:])  # [B, T, 2]
        return logits.masked_fill(~context[..., None], MASKED)


def classifier_to_span(state: State, model: nn.Module) -> tuple[State, list[str]] | None:
    """A ``nlp.transformer_classifier`` state dict: everything but its classification head (a new span head)."""
    if "cls" not in state or "head.weight" not in state or "seg_emb.weight" in state:
        return None
    mapped = {k: v for k, v in state.items() if not k.startswith("head.")}
    return mapped, [
        "head: the classifier's head is dropped; the start/end head, segment and match embeddings start fresh"
    ]
