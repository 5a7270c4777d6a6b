"""SQuAD-format JSON and the SQuAD evaluation's exact match and F1 (torch-free).

The normalisation is the official script's (SQuAD v1.1 ``evaluate-v1.1.py``): lowercase, punctuation removed,
the articles ``a``/``an``/``the`` removed, whitespace collapsed. A prediction is scored against every gold
answer of its question and keeps the best (``exact_match`` 0/1, ``f1`` over bags of normalised words).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import ConfigError

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class Example:
    """One question about one context, with its gold answers as ``(text, character start)``."""

    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (the official SQuAD normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def f1(prediction: str, answers: Sequence[str]) -> float:
    """The best word-overlap F1 of the prediction against the gold answers (normalised words, as bags)."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return float(pred == gold)  # both empty: 1 (the official script's 0 for two empty answers is moot here)
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def read_squad(path: str | Path) -> list[Example]:
    """Every answerable question of a SQuAD-format file (``data[].paragraphs[].qas[].answers[]``).

    Questions without answers (SQuAD 2.0's impossible ones) are left out; a malformed file is one ConfigError
    naming the file and the place.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"SQuAD file not found: {file}", hint="data.path: a SQuAD-format JSON file")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not a JSON file ({exc})") from None
    out: list[Example] = []
    try:
        for a, article in enumerate(doc["data"]):
            for p, para in enumerate(article["paragraphs"]):
                context = str(para["context"])
                for q, qa in enumerate(para["qas"]):
                    where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                    answers = tuple((str(x["text"]), int(x["answer_start"])) for x in qa.get("answers") or [])
                    for text, start in answers:
                        if context[start : start + len(text)] != text:
                            raise ConfigError(
                                f"{file}: {where}: answer {text!r} is not at answer_start {start} of its context"
                            )
                    if answers and not qa.get("is_impossible"):
                        out.append(Example(str(qa.get("id", where)), str(qa["question"]), context, answers))
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            f"{file}: not SQuAD format (missing or wrong {exc})", hint="data[].paragraphs[].qas[].answers[]"
        ) from None
    if not out:
        raise ConfigError(f"{file}: no answerable question in it")
    return out
