"""Greedy (or sampled) and beam-search decoding over any network called like ``Seq2SeqTransformer.forward``.

A *stepper* gives the next-token log-probabilities of each row's prefix and keeps rows by index:
`Recompute` calls ``network(src, prefix)`` on the whole prefix (any callable: a deployed artifact),
`Cached` uses the eager model's KV cache (``start_decoding`` / ``decode_step``): the same numbers, fewer FLOPs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Recompute:
    """Full-prefix recompute through ``network(src [N, S], prefix [N, T]) -> logits [N, T, V]``."""

    def __init__(self, network: Callable[..., Any], src: torch.Tensor) -> None:
        self.network, self.src, self.device = network, src, src.device

    def step(self, prefix: torch.Tensor) -> torch.Tensor:
        logits = torch.as_tensor(self.network(self.src, prefix))
        return logits[:, -1].float().log_softmax(-1)

    def reorder(self, index: torch.Tensor) -> None:
        self.src = self.src.index_select(0, index.to(self.device))


class Cached:
    """Incremental decoding with the model's KV cache (feeds only each prefix's last token)."""

    def __init__(self, model: Any, src: torch.Tensor) -> None:
        self.model, self.cache, self.device = model, model.start_decoding(src), src.device

    def step(self, prefix: torch.Tensor) -> torch.Tensor:
        return self.model.decode_step(prefix[:, -1], self.cache).float().log_softmax(-1)

    def reorder(self, index: torch.Tensor) -> None:
        self.cache.reorder(index.to(self.device))


def stepper(network: Any, src: torch.Tensor, cache: bool = True) -> Recompute | Cached:
    """The KV-cache stepper when ``network`` can decode incrementally (the eager model), else full recompute."""
    if cache and callable(getattr(network, "start_decoding", None)) and callable(getattr(network, "decode_step", None)):
        return Cached(network, src)
    return Recompute(network, src)


def _strip(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


def greedy(
    step: Recompute | Cached,
    batch: int,
    bos: int,
    eos: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """The likeliest next token at each step (temperature 0), or a sample; rows leave the batch at ``</s>``."""
    prefix = torch.full((batch, 1), bos, dtype=torch.long, device=step.device)
    alive = torch.arange(batch)
    out: list[list[int]] = [[] for _ in range(batch)]
    for _ in range(max_new_tokens):
        logp = step.step(prefix)
        if temperature > 0:
            logits = logp / temperature
            if top_k:
                kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        else:
            nxt = logp.argmax(-1)
        for row, tok in zip(alive.tolist(), nxt.tolist(), strict=True):
            out[row].append(tok)
        keep = (nxt != eos).nonzero().flatten()
        if len(keep) == 0:
            break
        if len(keep) < len(alive):
            step.reorder(keep)
            alive, prefix, nxt = alive[keep.cpu()], prefix[keep], nxt[keep]
        prefix = torch.cat([prefix, nxt[:, None]], dim=1)
    return [_strip(r, eos) for r in out]


def beam_search(
    step: Recompute | Cached,
    batch: int,
    bos: int,
    eos: int,
    max_new_tokens: int,
    beam: int = 4,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Batched beam search; a hypothesis is ranked by ``sum log p / length ** length_penalty`` (length with
    ``</s>``). A batch item stops once ``beam`` hypotheses ended and no open one can still beat the worst of them."""
    k = beam
    step.reorder(torch.arange(batch).repeat_interleave(k))  # k rows per input
    prefix = torch.full((batch * k, 1), bos, dtype=torch.long, device=step.device)
    scores = torch.full((batch, k), float("-inf"))
    scores[:, 0] = 0.0  # the k copies of <s> are one hypothesis
    done: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    closed = [False] * batch

    def norm(score: float, length: int) -> float:
        return score / (length**length_penalty)

    for t in range(1, max_new_tokens + 1):
        logp = step.step(prefix).cpu()  # [B*k, V]: the bookkeeping below is on the CPU
        v = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(batch, k * v)
        top, idx = cand.topk(min(2 * k, k * v), dim=-1)
        parents = torch.zeros(batch, k, dtype=torch.long)
        tokens = torch.full((batch, k), eos, dtype=torch.long)
        new_scores = torch.full((batch, k), float("-inf"))
        for b in range(batch):
            if closed[b]:
                parents[b] = torch.arange(k)
                continue
            n = 0
            for s, i in zip(top[b].tolist(), idx[b].tolist(), strict=True):
                if s == float("-inf"):
                    break
                parent, tok = divmod(i, v)
                if tok == eos:
                    seq = prefix[b * k + parent, 1:].tolist()
                    if len(done[b]) < k or norm(s, t) > min(d[0] for d in done[b]):
                        done[b].append((norm(s, t), seq))
                        done[b] = sorted(done[b], key=lambda d: -d[0])[:k]
                    continue
                parents[b, n], tokens[b, n], new_scores[b, n] = parent, tok, s
                n += 1
                if n == k:
                    break
            best_open = float(new_scores[b].max())
            # An open hypothesis's score only falls; divided by at most (max length) ** penalty, or t ** penalty
            # when the penalty is negative, this bounds every normalised score it can still reach.
            bound = best_open / ((max_new_tokens if length_penalty > 0 else t + 1) ** length_penalty)
            if best_open == float("-inf") or (len(done[b]) >= k and bound <= done[b][-1][0]):
                closed[b] = True
        if all(closed):
            break
        flat = (torch.arange(batch)[:, None] * k + parents).reshape(-1)
        step.reorder(flat)
        prefix = torch.cat([prefix[flat.to(step.device)], tokens.reshape(-1, 1).to(step.device)], dim=1)
        scores = new_scores
    results = []
    for b in range(batch):
        hyps = list(done[b])
        if not closed[b]:  # out of length: the open hypotheses compete too
            for j in range(k):
                s = float(scores[b, j])
                if s > float("-inf"):
                    hyps.append((norm(s, prefix.shape[1] - 1), prefix[b * k + j, 1:].tolist()))
        results.append(max(hyps, key=lambda d: d[0])[1] if hyps else [])
    return results
