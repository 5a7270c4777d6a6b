"""An encoder-decoder transformer on ``F.scaled_dot_product_attention``, with a KV cache for incremental decoding.

``forward(src, tgt_in)`` is the whole teacher-forced pass (explicit masks and ``is_causal=True``: no data-dependent
mask detection, so it traces, scripts and exports); ``start_decoding`` / ``decode_step`` / ``KVCache.reorder``
decode one token at a time, reusing the encoder output, the cross-attention keys and the decoder's past keys.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge, Lt
from torch import nn


def sinusoids(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Sinusoidal position encodings ``[T, d_model]`` of integer ``positions`` (no length limit)."""
    half = d_model // 2
    freq = torch.exp(torch.arange(half, device=positions.device, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = positions.float()[:, None] * freq[None, :]
    out = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(out, (0, d_model - 2 * half))


class Attention(nn.Module):
    def __init__(self, d_model: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        b, t, d = x.shape
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(self.split(self.q(x)), k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn, self.ff, self.drop = (
            Attention(d_model, n_head, dropout),
            FeedForward(d_model, d_ff, dropout),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.drop(self.attn.attend(h, *self.attn.keys_values(h), mask=mask))
        return x + self.drop(self.ff(self.ln2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn, self.cross_attn = Attention(d_model, n_head, dropout), Attention(d_model, n_head, dropout)
        self.ff, self.drop = FeedForward(d_model, d_ff, dropout), nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One layer; with ``past`` (the keys/values of earlier positions) ``x`` holds only the new positions."""
        h = self.ln1(x)
        k, v = self.self_attn.keys_values(h)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        # Whole prefix: causal (explicit, never detected from a mask). One new token after a cache sees all of it.
        x = x + self.drop(self.self_attn.attend(h, k, v, causal=past is None))
        x = x + self.drop(self.cross_attn.attend(self.ln2(x), *cross_kv, mask=mask))
        return x + self.drop(self.ff(self.ln3(x))), (k, v)


class KVCache:
    """Incremental decoding state: source mask, cross-attention keys/values, and the decoder's past keys/values."""

    def __init__(self, mask: torch.Tensor, cross: list, past: list) -> None:
        self.mask, self.cross, self.past, self.length = mask, cross, past, 0

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` (a beam's parents, or a greedy batch's unfinished rows), in that order."""
        self.mask = self.mask.index_select(0, index)
        self.cross = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross]
        self.past = [
            None if p is None else (p[0].index_select(0, index), p[1].index_select(0, index)) for p in self.past
        ]


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder transformer (pre-norm, sinusoidal positions, padding masked from the source).

    ``forward(src [B, S], tgt_in [B, T]) -> logits [B, T, tgt_vocab_size]``; without ``tgt_in`` the prefix is
    ``<s>`` alone (logits of the first target token, ``[B, 1, V]``).

    Args:
        src_vocab_size: source vocabulary (from the data's facts).
        tgt_vocab_size: target vocabulary (from the data's facts).
        pad_id: padding id of both sides (masked in the source).
        bos_id: ``<s>``, the first decoder input.
        d_model: width.
        n_head: attention heads (divides d_model).
        n_encoder_layers: encoder blocks.
        n_decoder_layers: decoder blocks.
        d_ff: feed-forward width (default 4 * d_model).
        dropout: dropout probability.
        tie_embeddings: the output projection reuses the target embedding matrix.
    """

    def __init__(
        self,
        src_vocab_size: Annotated[int, Ge(1)],
        tgt_vocab_size: Annotated[int, Ge(1)],
        bos_id: Annotated[int, Ge(0)],
        pad_id: Annotated[int, Ge(0)] = 0,
        d_model: Annotated[int, Ge(2)] = 128,
        n_head: Annotated[int, Ge(1)] = 4,
        n_encoder_layers: Annotated[int, Ge(1)] = 2,
        n_decoder_layers: Annotated[int, Ge(1)] = 2,
        d_ff: Annotated[int, Ge(1)] | None = None,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        tie_embeddings: bool = True,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_head ({n_head})")
        for name, value, size in (("bos_id", bos_id, tgt_vocab_size), ("pad_id", pad_id, tgt_vocab_size)):
            if value >= size:
                raise ValueError(f"{name} {value} is outside the target vocabulary of {size}")
        self.pad_id, self.bos_id, self.d_model = pad_id, bos_id, d_model
        d_ff = d_ff or 4 * d_model
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_head, d_ff, dropout) for _ in range(n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, n_head, d_ff, dropout) for _ in range(n_decoder_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_embeddings:
            self.head.weight = self.tgt_embed.weight
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=d_model**-0.5)

    def _embed(self, vectors: torch.Tensor, start: int = 0) -> torch.Tensor:
        pos = torch.arange(vectors.shape[1], device=vectors.device) + start
        return self.drop(vectors * math.sqrt(self.d_model) + sinusoids(pos, self.d_model))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``[B, S, d]`` and the source mask ``[B, 1, 1, S]`` (True: a real token)."""
        mask = (src != self.pad_id)[:, None, None, :]
        x = self._embed(self.src_embed(src))
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_norm(x), mask

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None) -> torch.Tensor:
        if tgt_in is None:
            tgt_in = torch.full((src.shape[0], 1), self.bos_id, dtype=torch.long, device=src.device)
        memory, mask = self.encode(src)
        x = self._embed(self.tgt_embed(tgt_in))
        for layer in self.decoder:
            x, _ = layer(x, layer.cross_attn.keys_values(memory), mask)
        return self.head(self.dec_norm(x))

    # ------------------------------------------------------------------ incremental decoding
    def start_decoding(self, src: torch.Tensor) -> KVCache:
        """Encode ``src`` once; the cache then takes one decoder token per `decode_step`."""
        memory, mask = self.encode(src)
        cross = [layer.cross_attn.keys_values(memory) for layer in self.decoder]
        return KVCache(mask, cross, [None] * len(self.decoder))

    def decode_step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits ``[N, V]`` of the token after ``tokens [N]`` (the last of each row's prefix); updates ``cache``."""
        x = self._embed(self.tgt_embed(tokens[:, None]), start=cache.length)
        for i, layer in enumerate(self.decoder):
            x, cache.past[i] = layer(x, cache.cross[i], cache.mask, past=cache.past[i])
        cache.length += 1
        return self.head(self.dec_norm(x))[:, -1]
