"""Closed-vocabulary CTC decoding: prefix beam search over a word lexicon (a character trie) with a
word n-gram language model, in plain Python on the CTC log-probabilities.

A hypothesis is a collapsed label sequence that spells lexicon words, separated by spaces (a space
may also be left out between two words: a model that runs words together is still heard). Its score
is the CTC probability of the labels (summed over alignments, as in prefix beam search) plus, for
every completed word, ``lm_weight * log P(word | previous words) + word_bonus``, and at the end the
probability of the end of the sentence. Anything that is not a sequence of lexicon words, like
``sive`` or ``oeight``, is never a hypothesis.

The n-gram is estimated from word sequences (the training transcripts) with add-``k`` smoothing,
interpolated with the unigram; with no counts it is uniform over the lexicon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

NEG = -math.inf


def _lse(a: float, b: float) -> float:
    if a == NEG:
        return b
    if b == NEG:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


class NGram:
    """A word n-gram (order 1-3) over ``words`` plus sentence start/end, add-``k`` smoothed.

    ``counts`` is a dense tensor ``[W + 2] * order`` (index ``W`` is ``<s>``, ``W + 1`` is ``</s>``), so it
    can live in a model's state dict.
    """

    def __init__(self, words: Sequence[str], order: int = 2, counts: torch.Tensor | None = None, k: float = 0.5):
        if not 1 <= order <= 3:
            raise ValueError(f"lm_order must be 1, 2 or 3, got {order}")
        self.words, self.order, self.k = list(words), order, k
        self.index = {w: i for i, w in enumerate(self.words)}
        self.bos, self.eos = len(self.words), len(self.words) + 1
        size = [len(self.words) + 2] * order
        self.counts = torch.zeros(size, dtype=torch.float64) if counts is None else counts.double()
        self._cache: dict[tuple[int, ...], float] = {}

    def add(self, sentences: Iterable[Sequence[str]]) -> None:
        """Count the n-grams of ``sentences`` (lists of words; words outside the lexicon are skipped)."""
        for sentence in sentences:
            ids = [self.bos] * (self.order - 1) + [self.index[w] for w in sentence if w in self.index] + [self.eos]
            for i in range(self.order - 1, len(ids)):
                self.counts[tuple(ids[i - self.order + 1 : i + 1])] += 1
        self._cache.clear()

    def logp(self, history: Sequence[int], word: int) -> float:
        """``log P(word | history)`` (``history``: previous word ids, ``<s>``-padded as needed)."""
        hist = ([self.bos] * self.order + list(history))[len(history) + 1 :] if self.order > 1 else []
        key = (*hist, word)
        if key not in self._cache:
            n = len(self.words) + 1  # words + </s> can follow
            uni = self.counts.sum(dim=tuple(range(self.order - 1))) if self.order > 1 else self.counts
            p = (float(uni[word]) + self.k) / (float(uni[: self.bos].sum() + uni[self.eos]) + self.k * n)
            if hist:
                row = self.counts[tuple(hist)]
                total = float(row[: self.bos].sum() + row[self.eos])
                p = 0.5 * (float(row[word]) + self.k * n * p) / (total + self.k * n) + 0.5 * p
            self._cache[key] = math.log(p)
        return self._cache[key]


class Trie:
    """Character-id trie of the lexicon: ``children[node][char] -> node``, ``word[node]`` (or -1)."""

    def __init__(self, words: Sequence[str], vocabulary: Sequence[str]) -> None:
        index = {c: i + 1 for i, c in enumerate(vocabulary)}
        self.children: list[dict[int, int]] = [{}]
        self.word: list[int] = [-1]
        for w_id, word in enumerate(words):
            node = 0
            for ch in word:
                if ch not in index:
                    raise ValueError(f"lexicon word {word!r} has character {ch!r} outside the vocabulary")
                nxt = self.children[node].get(index[ch])
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][index[ch]] = nxt
                    self.children.append({})
                    self.word.append(-1)
                node = nxt
            self.word[node] = w_id


def lexicon_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    vocabulary: Sequence[str],
    words: Sequence[str],
    lm: NGram | None = None,
    beam_width: int = 16,
    lm_weight: float = 0.5,
    word_bonus: float = 1.0,
    prune: float = -12.0,
) -> list[str]:
    """Transcripts of a batch of CTC outputs ``[B, T, V]`` (blank 0), restricted to ``words``."""
    lm = lm or NGram(words, 1)
    trie = Trie(words, vocabulary)
    space = vocabulary.index(" ") + 1 if " " in vocabulary else -1
    lp_all = log_probs.detach().float().cpu()
    out = []
    for b in range(lp_all.shape[0]):
        out.append(
            _decode_one(lp_all[b, : int(lengths[b])], trie, words, lm, space, beam_width, lm_weight, word_bonus, prune)
        )
    return out


def _adder(table: dict[tuple[int, ...], list[float]]):
    def add(prefix: tuple[int, ...], pb: float, pnb: float) -> None:
        cur = table.setdefault(prefix, [NEG, NEG])
        cur[0], cur[1] = _lse(cur[0], pb), _lse(cur[1], pnb)

    return add


def _decode_one(
    lp: torch.Tensor,
    trie: Trie,
    words: Sequence[str],
    lm: NGram,
    space: int,
    beam: int,
    alpha: float,
    beta: float,
    prune: float,
) -> str:
    # prefix (label tuple) -> [log p ending in blank, log p ending in a label]; meta: (node, words, lm score)
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG]}
    meta: dict[tuple[int, ...], tuple[int, tuple[int, ...], float]] = {(): (0, (), 0.0)}

    def word_score(hist: tuple[int, ...], w: int) -> float:
        return alpha * lm.logp(hist, w) + beta

    for frame in lp.tolist():
        blank = frame[0]
        cands = [c for c in range(1, len(frame)) if frame[c] > prune]
        nxt: dict[tuple[int, ...], list[float]] = {}
        add = _adder(nxt)

        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            add(prefix, total + blank, NEG)
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, NEG, pnb + frame[last])  # repeated label collapses
            node, done, lm_score = meta[prefix]
            for c in cands:
                if c == space:
                    if node == 0 or trie.word[node] < 0:
                        continue  # a space only ends a complete word
                    state = (0, (*done, trie.word[node]), lm_score + word_score(done, trie.word[node]))
                elif c in trie.children[node]:
                    state = (trie.children[node][c], done, lm_score)
                elif node != 0 and trie.word[node] >= 0 and c in trie.children[0]:  # next word, space left out
                    w = trie.word[node]
                    state = (trie.children[0][c], (*done, w), lm_score + word_score(done, w))
                else:
                    continue
                new = (*prefix, c)
                meta.setdefault(new, state)
                add(new, NEG, (pb if c == last else total) + frame[c])
        ranked = sorted(nxt.items(), key=lambda kv: -(_lse(*kv[1]) + meta[kv[0]][2]))[:beam]
        beams = dict(ranked)

    best, best_score = None, NEG
    for prefix, probs in beams.items():
        node, done, lm_score = meta[prefix]
        if node != 0:
            if trie.word[node] < 0:
                continue  # ends inside a word
            lm_score += word_score(done, trie.word[node])
            done = (*done, trie.word[node])
        if not done:
            continue
        score = _lse(*probs) + lm_score + alpha * lm.logp(done, lm.eos)
        if score > best_score:
            best, best_score = done, score
    return " ".join(words[w] for w in best) if best is not None else ""
