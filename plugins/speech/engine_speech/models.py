"""Speech models: a keyword-spotting CNN on log-mel clips and a CTC recogniser (conv + BiGRU/transformer).

Both accept the features the plugin's data sources produce: clips ``[B, 1, n_mels, frames]``, or
sequences ``(features [B, n_mels, T], lengths [B])``. `CTCASR` returns
``(log-probabilities [B, T', vocab_size], output lengths [B])`` with index 0 the CTC blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Lt
from torch import nn

from engine import ConfigError
from engine.layers import norm_layer


def _block(cin: int, cout: int, norm: str) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none")
    return nn.Sequential(conv, norm_layer(norm, cout), nn.ReLU(inplace=True))


class KWSCNN(nn.Module):
    """Keyword spotting on log-mel clips: conv stages with max-pooling, global average pooling, linear.

    Args:
        input_shape: [1, n_mels, frames] of one clip (from the data).
        num_classes: number of keywords (from the data).
        width: channels of the second stage; the first has half, the third and later double.
        stages: conv stages, each followed by 2x2 max-pooling while the map is large enough.
        dropout: dropout before the classifier.
        norm: normalisation after each convolution: batch (BatchNorm), group (GroupNorm, per-sample
            statistics, e.g. for differential privacy) or none.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        width: Annotated[int, Ge(1)] = 32,
        stages: Annotated[int, Ge(1)] = 4,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.2,
        norm: Literal["batch", "group", "none"] = "batch",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"kws_cnn needs input_shape [channels, n_mels, frames], got {list(input_shape)}")
        if stages < 1 or width < 4:
            raise ConfigError("kws_cnn needs stages >= 1 and width >= 4")
        self.input_shape = list(input_shape)
        layers: list[nn.Module] = []
        cin, h, w = input_shape
        for s in range(stages):
            cout = width // 2 if s == 0 else width * 2 ** max(0, s - 1)
            layers += [_block(cin, cout, norm), _block(cout, cout, norm) if s > 0 else nn.Identity()]
            if h >= 4 and w >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.shape[1] != self.input_shape[0] or x.shape[2] != self.input_shape[1]:
            raise ValueError(f"kws_cnn was built for clips {self.input_shape}, got a batch of {list(x.shape[1:])}")
        return self.head(self.features(x))


class _PositionalEncoding(nn.Module):
    def __init__(self, d: int, max_len: int = 4000) -> None:
        super().__init__()
        pos = torch.arange(max_len)[:, None]
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe = torch.zeros(max_len, d)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.shape[1]]


class CTCASR(nn.Module):
    """Speech recogniser: 1-D conv front-end (strided in time) + BiGRU or transformer encoder + CTC head.

    Args:
        vocab_size: characters + 1 for the CTC blank (from the data).
        n_mels: features per frame (from the data).
        encoder: gru (bidirectional GRU) or transformer (encoder layers, sinusoidal positions).
        hidden: GRU hidden size per direction, or the transformer's model width.
        layers: encoder layers.
        conv_channels: channels of the conv front-end.
        stride: time stride of the front-end (frames per output step; CTC needs at least one step per
            character, so keep it at 3 or below for 10 ms frames).
        heads: attention heads (transformer).
        dropout: dropout between encoder layers and before the head.
        norm: normalisation in the conv front-end: batch (BatchNorm), group (GroupNorm, per-sample
            statistics) or none.
    """

    def __init__(
        self,
        vocab_size: int,
        n_mels: int,
        encoder: Literal["gru", "transformer"] = "gru",
        hidden: int = 128,
        layers: Annotated[int, Ge(1)] = 2,
        conv_channels: Annotated[int, Ge(1)] = 128,
        stride: int = 2,
        heads: Annotated[int, Ge(1)] = 4,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        norm: Literal["batch", "group", "none"] = "batch",
    ) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ConfigError(f"ctc_asr needs vocab_size >= 2 (blank + characters), got {vocab_size}")
        if encoder == "transformer" and hidden % heads:
            raise ConfigError(f"ctc_asr: hidden ({hidden}) must be divisible by heads ({heads})")
        if stride < 1:
            raise ConfigError(f"ctc_asr: stride must be >= 1, got {stride}")
        self.n_mels, self.vocab_size, self.encoder_kind, self.stride = n_mels, vocab_size, encoder, stride
        self.front = nn.Sequential(
            nn.Conv1d(n_mels, conv_channels, 5, stride=stride, padding=2, bias=norm == "none"),
            norm_layer(norm, conv_channels, dims=1),
            nn.GELU(),
            nn.Conv1d(conv_channels, conv_channels, 5, padding=2, bias=norm == "none"),
            norm_layer(norm, conv_channels, dims=1),
            nn.GELU(),
        )
        if encoder == "gru":
            self.rnn = nn.GRU(
                conv_channels,
                hidden,
                num_layers=layers,
                batch_first=True,
                bidirectional=True,
                dropout=dropout if layers > 1 else 0.0,
            )
            out = 2 * hidden
        else:
            self.proj = nn.Linear(conv_channels, hidden)
            self.pos = _PositionalEncoding(hidden)
            layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            out = hidden
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(out, vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + 2 * 2 - 5) // self.stride + 1

    def forward(
        self, inputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(inputs, (tuple, list)):
            x, lengths = inputs
        else:
            x, lengths = inputs, None
        if x.dim() == 4:  # fixed-length clips [B, 1, n_mels, frames]
            x = x.squeeze(1)
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"ctc_asr expects features [B, {self.n_mels}, T], got {list(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[-1], dtype=torch.long, device=x.device)
        h = self.front(x).transpose(1, 2)  # [B, T', C]
        out_lens = self.output_lengths(lengths).clamp(1, h.shape[1])
        if self.encoder_kind == "gru":
            frames = h.shape[1]
            packed = nn.utils.rnn.pack_padded_sequence(h, out_lens.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = self.rnn(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=frames)
        else:
            mask = torch.arange(h.shape[1], device=h.device)[None] >= out_lens[:, None]
            h = self.transformer(self.pos(self.proj(h)), src_key_padding_mask=mask)
        return self.head(self.dropout(h)).log_softmax(-1), out_lens


# --------------------------------------------------------------------------- decoding


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for seq, n in zip(best, lengths.cpu().tolist(), strict=True):
        ids, prev = [], blank
        for t in seq[:n].tolist():
            if t != prev and t != blank:
                ids.append(t)
            prev = t
        out.append(ids)
    return out


def _lse(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def _accumulate(
    beams: dict[tuple[int, ...], tuple[float, float]], prefix: tuple[int, ...], pb: float, pnb: float
) -> None:
    ob, onb = beams.get(prefix, (-math.inf, -math.inf))
    beams[prefix] = (_lse(ob, pb), _lse(onb, pnb))


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int = 8, blank: int = 0) -> list[list[int]]:
    """CTC prefix beam search (no language model): the likeliest labelling summed over its alignments."""
    results = []
    lp = log_probs.detach().float().cpu()
    for b, n in enumerate(lengths.cpu().tolist()):
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (p_blank, p_char)
        for t in range(n):
            frame = lp[b, t].tolist()
            top = sorted(range(len(frame)), key=lambda c: -frame[c])[:beam_width]
            if blank not in top:
                top.append(blank)
            nxt: dict[tuple[int, ...], tuple[float, float]] = {}
            add = partial(_accumulate, nxt)

            for prefix, (pb, pnb) in beams.items():
                total = _lse(pb, pnb)
                for c in top:
                    p = frame[c]
                    if c == blank:
                        add(prefix, total + p, -math.inf)
                    elif prefix and prefix[-1] == c:
                        add((*prefix, c), -math.inf, pb + p)  # a repeated character needs a blank in between
                        add(prefix, -math.inf, pnb + p)  # otherwise it merges into the last one
                    else:
                        add((*prefix, c), -math.inf, total + p)
            beams = dict(sorted(nxt.items(), key=lambda kv: -_lse(*kv[1]))[:beam_width])
        results.append(list(max(beams.items(), key=lambda kv: _lse(*kv[1]))[0]))
    return results


def decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocabulary: Sequence[str], beam_width: int = 1) -> list[str]:
    """Transcripts of a batch of CTC outputs (greedy when ``beam_width`` is 1)."""
    ids = greedy_decode(log_probs, lengths) if beam_width <= 1 else beam_decode(log_probs, lengths, beam_width)
    return [" ".join("".join(vocabulary[i - 1] for i in seq if 0 < i <= len(vocabulary)).split()) for seq in ids]
