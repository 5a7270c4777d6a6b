"""Metrics of generated text: corpus BLEU and chrF from sacrebleu (0-100), exact match, token accuracy (0-1)."""

from __future__ import annotations

from collections.abc import Sequence


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """``sacrebleu.corpus_bleu(hypotheses, [references]).score``: corpus BLEU, 13a tokenisation, 0-100."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """``sacrebleu.corpus_chrf``: character n-gram F-score (chrF2), 0-100."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of outputs equal to their reference (whitespace at the ends ignored)."""
    if not references:
        return 0.0
    return sum(h.strip() == r.strip() for h, r in zip(hypotheses, references, strict=True)) / len(references)


def position_accuracy(outputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> float:
    """Generated ids equal to the reference's at the same position, over the longer of the two per pair."""
    right = sum(sum(a == b for a, b in zip(o, t, strict=False)) for o, t in zip(outputs, targets, strict=True))
    total = sum(max(len(o), len(t)) for o, t in zip(outputs, targets, strict=True))
    return right / total if total else 1.0


def text_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    return {
        "bleu": bleu(hypotheses, references),
        "chrf": chrf(hypotheses, references),
        "exact_match": exact_match(hypotheses, references),
    }
