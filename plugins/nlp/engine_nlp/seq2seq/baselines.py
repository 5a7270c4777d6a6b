"""Baselines of translation runs: copy the source, and translate word by word with a dictionary learnt from the
training pairs (each source word -> the target word it co-occurs with most, by the Dice coefficient)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from engine_nlp.seq2seq.metrics import bleu, chrf


def learn_dictionary(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Source word -> target word maximising ``2 c(s, t) / (c(s) + c(t))`` over sentence co-occurrence."""
    cs, ct, cst = Counter(), Counter(), Counter()
    for s, t in pairs:
        sw, tw = set(s.split()), set(t.split())
        cs.update(sw)
        ct.update(tw)
        cst.update((a, b) for a in sw for b in tw)
    best: dict[str, tuple[float, str]] = {}
    for (a, b), n in cst.items():
        dice = 2 * n / (cs[a] + ct[b])
        if a not in best or (dice, b) > best[a]:
            best[a] = (dice, b)
    return {a: b for a, (_, b) in best.items()}


def translate_words(text: str, dictionary: dict[str, str]) -> str:
    """Word by word, in source order; unknown words are copied."""
    return " ".join(dictionary.get(w, w) for w in text.split())


def baseline_scores(train: Sequence[tuple[str, str]], pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    """``copy_bleu``, ``copy_chrf``, ``dict_bleu``, ``dict_chrf`` on ``pairs``."""
    if not pairs:
        return {}
    refs = [t for _, t in pairs]
    copy = [s for s, _ in pairs]
    dictionary = learn_dictionary(train)
    words = [translate_words(s, dictionary) for s, _ in pairs]
    return {
        "copy_bleu": bleu(copy, refs),
        "copy_chrf": chrf(copy, refs),
        "dict_bleu": bleu(words, refs),
        "dict_chrf": chrf(words, refs),
    }
