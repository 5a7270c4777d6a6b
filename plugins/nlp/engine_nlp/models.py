"""Text models: a decoder-only GPT, a transformer encoder classifier and an LSTM classifier.

Attention is ``torch.nn.functional.scaled_dot_product_attention`` (causal for the GPT, a padding mask for
the classifier). Inputs are token ids ``[batch, time]``; padding (``pad_id``) is on the right.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt, Lt
from torch import nn
from torch.utils.checkpoint import checkpoint


class Rotary(nn.Module):
    """Rotary position embedding (RoPE) tables for ``context_length`` positions."""

    def __init__(self, head_dim: int, context_length: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head dimension, got {head_dim}")
        inv = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
        freqs = torch.outer(torch.arange(context_length).float(), inv)
        emb = torch.cat([freqs, freqs], -1)
        self.register_buffer("cos", emb.cos()[None, None], persistent=False)
        self.register_buffer("sin", emb.sin()[None, None], persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Rotate ``x`` ``[B, heads, T, head_dim]`` whose first position is ``start``."""
        t = x.shape[-2]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * self.cos[..., start : start + t, :] + rotated * self.sin[..., start : start + t, :]


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, dropout: float, bias: bool, rotary: Rotary | None) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.rotary = rotary

    def forward(
        self, x: torch.Tensor, causal: bool, mask: torch.Tensor | None = None, cache: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``cache`` (generation): keys and values of earlier positions, extended in place with these ones."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, c // self.n_head).permute(2, 0, 3, 1, 4)
        past = cache[0].shape[2] if cache else 0
        if self.rotary is not None:
            q, k = self.rotary(q, past), self.rotary(k, past)
        if cache is not None:
            if past and t > 1:
                raise ValueError("a KV cache extends by one token at a time")
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
            causal = causal and past == 0  # one new token after a cached prefix attends to every key
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: attention and a GELU MLP, each with a residual connection."""

    def __init__(
        self, d_model: int, n_head: int, mlp_ratio: int, dropout: float, bias: bool, rotary: Rotary | None
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, bias=bias)
        self.attn = SelfAttention(d_model, n_head, dropout, bias, rotary)
        self.ln2 = nn.LayerNorm(d_model, bias=bias)
        self.fc = nn.Linear(d_model, mlp_ratio * d_model, bias=bias)
        self.out = nn.Linear(mlp_ratio * d_model, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, causal: bool, mask: torch.Tensor | None = None, cache: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), causal, mask, cache))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))


def _check_heads(d_model: int, n_head: int) -> None:
    if n_head < 1 or d_model % n_head:
        from engine import ConfigError

        raise ConfigError(f"d_model ({d_model}) must be a multiple of n_head ({n_head})")


def _init(module: nn.Module, n_layer: int) -> None:
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("attn.proj.weight", "out.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


class GPT(nn.Module):
    """Decoder-only transformer language model: token ids ``[B, T]`` -> next-token logits ``[B, T, vocab]``.

    Args:
        vocab_size: size of the tokenizer's vocabulary (from the data).
        context_length: longest sequence the model attends over (from the data).
        n_layer: number of transformer blocks.
        n_head: attention heads per block.
        d_model: width of the residual stream (a multiple of n_head).
        mlp_ratio: hidden width of each MLP as a multiple of d_model.
        dropout: dropout on attention weights, residual branches and embeddings.
        positions: learned (an embedding per position) or rotary (RoPE on queries and keys).
        tie_weights: share the token embedding with the output projection.
        bias: use biases in linear and LayerNorm layers.
        gradient_checkpointing: recompute each block's activations in the backward pass while training (less
            memory for more compute; the same gradients).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        n_layer: Annotated[int, Ge(1)] = 4,
        n_head: Annotated[int, Ge(1)] = 4,
        d_model: Annotated[int, Ge(1)] = 128,
        mlp_ratio: Annotated[int, Ge(1)] = 4,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
        positions: Literal["learned", "rotary"] = "learned",
        tie_weights: bool = True,
        bias: bool = False,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        _check_heads(d_model, n_head)
        self.vocab_size, self.context_length = vocab_size, context_length
        self.gradient_checkpointing = gradient_checkpointing
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(context_length, d_model) if positions == "learned" else None
        rotary = Rotary(d_model // n_head, context_length) if positions == "rotary" else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_head, mlp_ratio, dropout, bias, rotary) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model, bias=bias)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        _init(self, n_layer)
        if tie_weights:
            self.head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor, cache: list[list[torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits ``[B, T, vocab]``; ``cache`` (one list per block, see `generate`) holds earlier positions."""
        t = idx.shape[1]
        past = cache[0][0].shape[2] if cache and cache[0] else 0
        if past + t > self.context_length:
            raise ValueError(f"sequence of {past + t} tokens is longer than the context length {self.context_length}")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb.weight[past : past + t]
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            if self.gradient_checkpointing and self.training and cache is None:
                x = checkpoint(block, x, True, use_reentrant=False)
            else:
                x = block(x, causal=True, cache=None if cache is None else cache[i])
        return self.head(self.ln_f(x))

    def forward_cached(
        self, idx: torch.Tensor, cache: list[list[torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Next-token logits ``[B, vocab]`` after ``idx``, which follows the positions ``cache`` holds (None: none),
        and the cache holding them too: the decoding loop's KV cache (`engine_nlp.generation.CachedDecoding`)."""
        cache = [[] for _ in self.blocks] if cache is None else cache
        return self(idx, cache)[:, -1], cache

    def reorder_cache(self, cache: list[list[torch.Tensor]], rows: torch.Tensor) -> list[list[torch.Tensor]]:
        """``cache`` keeping batch rows ``rows`` only, in that order."""
        return [[t.index_select(0, rows.to(t.device)) for t in layer] for layer in cache]

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: Annotated[float, Gt(0)] = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` ``[B, T]`` (temperature 0: greedy).

        With ``use_cache`` the keys and values of earlier positions are kept (a KV cache), so each new token
        costs one position's forward pass. When the context is full the cache restarts from the last
        ``context_length // 2`` tokens (without it, every step re-reads the last ``context_length``); up to a
        full context both give the same tokens.
        """
        cache: list[list[torch.Tensor]] | None = None
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = self(idx[:, -self.context_length :])
            elif cache is None or cache[0][0].shape[2] >= self.context_length:
                cache = [[] for _ in self.blocks]  # (re)fill the cache from the recent tokens
                keep = self.context_length if idx.shape[1] <= self.context_length else self.context_length // 2
                logits = self(idx[:, -max(keep, 1) :], cache)
            else:
                logits = self(idx[:, -1:], cache)
            logits = logits[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and 0 < top_k < logits.shape[-1]:
                    kth = torch.topk(logits, top_k).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], 1)
        return idx


class TransformerClassifier(nn.Module):
    """Transformer encoder text classifier: a [CLS] token prepended, padding masked out of attention.

    Args:
        vocab_size: size of the tokenizer's vocabulary (from the data).
        num_classes: number of classes (from the data).
        context_length: longest input in tokens (from the data); longer inputs are cut.
        pad_id: the padding token id (from the data); padded positions are never attended to.
        n_layer: number of transformer blocks.
        n_head: attention heads per block.
        d_model: width of the model (a multiple of n_head).
        mlp_ratio: hidden width of each MLP as a multiple of d_model.
        dropout: dropout in the blocks and before the classification head.
        pooling: cls (the [CLS] token's final state), mean (mean over non-padding tokens) or last (the last
            non-padding token's state).
        causal: attend causally, each position to itself and the ones before it (as ``nlp.gpt`` does), so the
            blocks of a GPT it starts from see what they were trained on; the [CLS] slot is then a first token
            that sees only itself, so pooling must be mean or last.
        gradient_checkpointing: recompute each block's activations in the backward pass while training.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        context_length: int,
        pad_id: int,
        n_layer: Annotated[int, Ge(1)] = 2,
        n_head: Annotated[int, Ge(1)] = 4,
        d_model: Annotated[int, Ge(1)] = 128,
        mlp_ratio: Annotated[int, Ge(1)] = 4,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        pooling: Literal["cls", "mean", "last"] = "cls",
        causal: bool = False,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        _check_heads(d_model, n_head)
        if causal and pooling == "cls":
            from engine import ConfigError

            raise ConfigError(
                "a causal classifier's [CLS] slot sees only itself", hint="set model.pooling=mean or model.pooling=last"
            )
        self.context_length, self.pad_id, self.pooling, self.causal = context_length, pad_id, pooling, causal
        self.gradient_checkpointing = gradient_checkpointing
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_emb = nn.Embedding(context_length + 1, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_head, mlp_ratio, dropout, True, None) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        _init(self, n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx[:, : self.context_length]
        b, t = idx.shape
        keep = idx != self.pad_id  # [B, T]
        x = torch.cat([self.cls.expand(b, -1, -1), self.tok_emb(idx)], 1) + self.pos_emb.weight[: t + 1]
        x = self.drop(x)
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=idx.device), keep], 1)
        mask = keep[:, None, None, :]  # attend only to real tokens (and [CLS], so no row is empty)
        if self.causal:  # and only to earlier positions ([CLS] is the first: still no empty row)
            mask = mask & torch.ones(t + 1, t + 1, dtype=torch.bool, device=idx.device).tril()
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, False, mask, use_reentrant=False)
            else:
                x = block(x, causal=False, mask=mask)
        x = self.ln_f(x)
        if self.pooling == "cls":
            pooled = x[:, 0]
        elif self.pooling == "last":  # padding is on the right: the last real token is at position count
            pooled = x[torch.arange(b, device=idx.device), keep.sum(1) - 1]
        else:
            w = keep[:, 1:, None].to(x.dtype)
            pooled = (x[:, 1:] * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.head(self.drop(pooled))


class LSTMClassifier(nn.Module):
    """(Bi)LSTM text classifier over packed sequences, so padding never enters the recurrence.

    Args:
        vocab_size: size of the tokenizer's vocabulary (from the data).
        num_classes: number of classes (from the data).
        pad_id: the padding token id (from the data); inputs are right-padded with it.
        embed_dim: token embedding size.
        hidden_size: LSTM hidden size per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also read the text right to left.
        dropout: dropout on embeddings, between LSTM layers and before the head.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        pad_id: int,
        embed_dim: Annotated[int, Ge(1)] = 128,
        hidden_size: Annotated[int, Ge(1)] = 128,
        num_layers: Annotated[int, Ge(1)] = 1,
        bidirectional: bool = True,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.emb = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)
        self.directions = 2 if bidirectional else 1

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        lengths = (idx != self.pad_id).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.emb(idx)), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        last = h[-self.directions :].transpose(0, 1).reshape(idx.shape[0], -1)  # final layer, every direction
        return self.head(self.drop(last))
