"""Decoding for causal language models: what `LanguageModelingTask.generate` and ``generate_stream`` run.

Prompts of any length up to the context are grouped by length (no padding, so no attention mask is needed and
every row sees exactly what it would see alone); the groups advance in lockstep, one token per step. A network
offering `CachedDecoding` (``nlp.gpt``, ``hf.causal_lm``, either with LoRA adapters) keeps a KV cache: each new
token costs one position's forward pass. Any other callable (a deployed artifact) is called like the model's
forward on the last ``context`` tokens each step. Each row samples with its own generator seeded by ``seed``, so
a prompt gives the same tokens alone or batched with others.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from engine import ConfigError, did_you_mean

#: The decoding options and their defaults (``engine generate``, ``engine serve``'s /v1 routes, the API).
DEFAULTS: dict[str, Any] = {
    "max_new_tokens": 64,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "stop": (),
    "seed": None,
}


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with defaults filled and checked; ConfigError (one line) for a name or value out of range."""
    for name in options:
        if name not in DEFAULTS:
            raise ConfigError(f"unknown generation option {name!r}{did_you_mean(name, list(DEFAULTS))}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None or k == "seed"}}
    n = opts["max_new_tokens"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"max_new_tokens must be an integer >= 1, got {n!r}")
    t = opts["temperature"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf"):
        raise ConfigError(f"temperature must be a number >= 0 (0: greedy), got {t!r}")
    k = opts["top_k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"top_k must be an integer >= 0 (0: every token), got {k!r}")
    p = opts["top_p"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ConfigError(f"top_p must be a number in (0, 1], got {p!r}")
    s = opts["seed"]
    if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 0):
        raise ConfigError(f"seed must be an integer >= 0, got {s!r}")
    opts["stop"] = _stop_sequences(opts["stop"])
    return opts


def _stop_sequences(stop: Any) -> tuple[tuple[int, ...], ...]:
    """``stop``: a token id, a list of ids (each a stop token) or a list of id sequences."""
    if isinstance(stop, int) and not isinstance(stop, bool):
        stop = [stop]
    if not isinstance(stop, (list, tuple)):
        raise ConfigError(f"stop must be token ids or lists of token ids, got {type(stop).__name__}")
    out = []
    for item in stop:
        seq = (item,) if isinstance(item, int) else tuple(item) if isinstance(item, (list, tuple)) else None
        if isinstance(item, str):
            raise ConfigError(
                f"stop takes token ids here, not text ({item!r}): the task has no tokenizer; engine serve's /v1 "
                "routes take stop strings"
            )
        if not seq or any(isinstance(i, bool) or not isinstance(i, int) for i in seq):
            raise ConfigError(f"stop must be token ids or non-empty lists of token ids, got {item!r}")
        out.append(seq)
    return tuple(out)


def check_inputs(inputs: Any, vocab_size: int | None, context: int | None) -> list[list[int]]:
    """Prompts as lists of ids; ConfigError for an empty prompt, an id outside the vocabulary, one too long."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ConfigError("give at least one prompt (a list of token ids)")
    out = []
    for n, ids in enumerate(inputs):
        if not isinstance(ids, (list, tuple)) or not ids:
            raise ConfigError(f"prompt {n} is empty: give at least one token id")
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or i < 0 or (vocab_size is not None and i >= vocab_size):
                bound = f"0..{vocab_size - 1}" if vocab_size is not None else ">= 0"
                raise ConfigError(f"prompt {n} has token id {i!r}, outside the vocabulary ({bound})")
        if context is not None and len(ids) > context:
            raise ConfigError(f"prompt {n} has {len(ids)} tokens, more than the context length {context}")
        out.append([int(i) for i in ids])
    return out


@dataclass
class _Row:
    ids: list[int]
    opts: dict[str, Any]
    generator: torch.Generator
    out: list[int] = field(default_factory=list)
    done: bool = False
    sent: int = 0  # tokens released to the caller (the ones that may start a stop sequence are held back)

    def release(self) -> list[int]:
        """The tokens not yet released that cannot be part of a stop sequence (all of them once done)."""
        stop = self.opts["stop"]
        out = strip_stop(self.out, stop) if self.done else self.out
        ready = len(out) if self.done else len(out) - (max((len(s) for s in stop), default=1) - 1)
        new = out[self.sent : max(ready, self.sent)]
        self.sent += len(new)
        return new


def _generator(seed: int | None) -> torch.Generator:
    return torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))


def sample(logits: torch.Tensor, opts: dict[str, Any], generator: torch.Generator) -> int:
    """One token from next-token ``logits`` ``[V]``: greedy at temperature 0, else top-k / top-p sampling."""
    if opts["temperature"] <= 0:
        return int(logits.argmax())
    logits = logits.float() / opts["temperature"]
    k = opts["top_k"]
    if 0 < k < logits.shape[-1]:
        logits = logits.masked_fill(logits < torch.topk(logits, k).values[-1], float("-inf"))
    if opts["top_p"] < 1:
        sorted_logits, order = logits.sort(descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= opts["top_p"]  # keep the smallest prefix reaching top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


@runtime_checkable
class CachedDecoding(Protocol):
    """A causal LM that keeps the keys and values of earlier positions (a KV cache) for the decoding loop.

    The cache is the model's own object, opaque to the loop; rows are prompts of one length (no padding).
    """

    def forward_cached(self, ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """The next-token logits ``[B, vocab]`` after ``ids [B, T]``, which follow the positions ``cache`` holds
        (``None``: an empty cache, ``ids`` start at position 0), and the cache now holding ``ids`` too."""
        ...

    def reorder_cache(self, cache: Any, rows: torch.Tensor) -> Any:
        """``cache`` keeping only batch rows ``rows`` (indices, in that order; rows may repeat)."""
        ...


def caches(network: Any) -> bool:
    """Whether ``network`` offers `CachedDecoding` (asked with ``getattr``: a wrapper forwarding its model's
    attributes, as LoRA's ``AdaptedModel`` does, offers it too)."""
    return all(callable(getattr(network, name, None)) for name in ("forward_cached", "reorder_cache"))


def _last(out: Any) -> torch.Tensor:
    if isinstance(out, (list, tuple)):
        out = out[0]
    return torch.as_tensor(out)[:, -1].float()


def _group(network: Any, rows: list[_Row], context: int | None) -> Iterator[None]:
    """Advance ``rows`` (prompts of one length) a token per step; finished rows leave the batch (and the cache).

    With a cache, when it holds ``context`` positions it restarts from the last ``context // 2`` tokens (without
    one, each step re-reads the last ``context``): up to a full context both give the same tokens."""
    idx = torch.tensor([r.ids for r in rows], dtype=torch.long)
    active = list(range(len(rows)))
    cached = caches(network)
    cache: Any = None
    held = 0  # positions in the cache
    while active:
        with torch.inference_mode():
            if cached and (held == 0 or (context is not None and held >= context)):
                keep = idx.shape[1] if context is None or idx.shape[1] <= context else max(context // 2, 1)
                logits, cache = network.forward_cached(idx[:, -keep:], None)  # (re)fill the cache
                logits, held = logits.float(), keep
            elif cached:
                logits, cache = network.forward_cached(idx[:, -1:], cache)
                logits, held = logits.float(), held + 1
            else:
                logits = _last(network(idx[:, -context:] if context else idx))
        new = []
        for j, i in enumerate(active):
            row = rows[i]
            token = sample(logits[j], row.opts, row.generator)
            new.append(token)
            if row.done:  # cancelled by the caller meanwhile
                continue
            row.out.append(token)
            stop = row.opts["stop"]
            row.done = len(row.out) >= row.opts["max_new_tokens"] or any(row.out[-len(s) :] == list(s) for s in stop)
        idx = torch.cat([idx, torch.tensor(new, dtype=torch.long)[:, None]], 1)
        keep_rows = [j for j, i in enumerate(active) if not rows[i].done]
        if len(keep_rows) < len(active):
            sel = torch.tensor(keep_rows, dtype=torch.long)
            idx = idx[sel]
            if cache is not None and keep_rows:
                cache = network.reorder_cache(cache, sel)
            active = [active[j] for j in keep_rows]
        yield None


class Decoder:
    """Prompts decoded a step at a time: ``step()`` advances every unfinished prompt by one token.

    ``inputs`` are checked prompts, ``options`` one checked option dict per prompt (`check_options`). The
    prompts are grouped by length, each group one batch (and one KV cache); ``cancel(i)`` drops prompt ``i``
    from its batch at the next step (a client that went away).
    """

    def __init__(self, network: Any, inputs: list[list[int]], options: list[dict[str, Any]], context: int | None):
        self.rows = [_Row(list(ids), o, _generator(o["seed"])) for ids, o in zip(inputs, options, strict=True)]
        by_length: dict[int, list[_Row]] = {}
        for row in self.rows:
            by_length.setdefault(len(row.ids), []).append(row)
        self.groups = [_group(network, g, context) for g in by_length.values()]

    @property
    def finished(self) -> bool:
        return not self.groups

    def cancel(self, i: int) -> None:
        self.rows[i].done = True

    def step(self) -> list[tuple[list[int], bool]]:
        """Per prompt: the tokens released by this step, and whether it is finished (stop sequences excluded)."""
        for g in list(self.groups):
            try:
                next(g)
            except StopIteration:
                self.groups.remove(g)
        return [(row.release(), row.done) for row in self.rows]


def strip_stop(out: list[int], stop: Sequence[Sequence[int]]) -> list[int]:
    """``out`` without the stop sequence it ends with (the stop is not part of the answer)."""
    for s in stop:
        if s and out[-len(s) :] == list(s):
            return out[: -len(s)]
    return out


def stream(network: Any, ids: list[int], opts: dict[str, Any], context: int | None) -> Iterator[int]:
    """One prompt's tokens as they are generated; tokens that may start a stop sequence are held back."""
    decoder = Decoder(network, [ids], [opts], context)
    while not decoder.finished:
        tokens, _ = decoder.step()[0]
        yield from tokens
