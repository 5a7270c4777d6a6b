"""A generated language pair with reordering and agreement (torch-free), for a translation recipe on 2 cores.

Source (English-like, SVO): ``[the|a] ADJ* NOUN[s] VERB[s] [the|a] ADJ* NOUN[s] [ADV]``.
Target (invented, SOV, adjectives after their noun): ``NOUN+num ADJ+gender+num ... OBJECT ... [ADV] VERB+subject
number``. Each noun has a gender (``-a``/``-e`` adjective endings) and a plural (``-i``); the verb agrees with the
subject's number (``-t``/``-n``); the determiners become a definiteness prefix (``lo`` or nothing). So a
word-by-word dictionary gets the words but neither the order nor the endings: a model must learn both.
"""

from __future__ import annotations

import random

#: source noun -> (target stem, gender)
NOUNS = {
    "dog": ("hund", "m"), "cat": ("miau", "f"), "bird": ("pip", "m"), "horse": ("ross", "m"),
    "fish": ("fisk", "f"), "child": ("kin", "f"), "farmer": ("bur", "m"), "teacher": ("lera", "f"),
    "king": ("rex", "m"), "queen": ("regin", "f"), "wolf": ("lup", "m"), "mouse": ("mus", "f"),
}  # fmt: skip
ADJECTIVES = {"big": "gros", "small": "pic", "old": "vet", "young": "jun", "red": "rub", "happy": "fel"}
VERBS = {"sees": "vid", "likes": "am", "follows": "sek", "helps": "jut", "finds": "trov", "calls": "vok"}
ADVERBS = {"today": "hodie", "often": "saepe", "quickly": "cito"}
#: irregular English plurals
PLURAL = {"child": "children", "mouse": "mice", "wolf": "wolves", "fish": "fish"}


def _noun_phrase(rng: random.Random, max_adjectives: int) -> tuple[list[str], list[str], bool]:
    noun = rng.choice(list(NOUNS))
    plural = rng.random() < 0.35
    definite = rng.random() < 0.5
    adjectives = rng.sample(list(ADJECTIVES), rng.randint(0, max_adjectives))
    stem, gender = NOUNS[noun]
    src = ([] if plural and not definite else ["the" if definite else "a"]) + adjectives
    src.append(PLURAL.get(noun, noun + "s") if plural else noun)
    tgt = (["lo"] if definite else []) + [stem + ("i" if plural else "")]
    tgt += [ADJECTIVES[a] + ("a" if gender == "m" else "e") + ("i" if plural else "") for a in adjectives]
    return src, tgt, plural


def sentence_pair(rng: random.Random, max_adjectives: int = 2) -> tuple[str, str]:
    """One (source, target) sentence pair."""
    subj_src, subj_tgt, plural = _noun_phrase(rng, max_adjectives)
    obj_src, obj_tgt, _ = _noun_phrase(rng, max_adjectives)
    verb = rng.choice(list(VERBS))
    adverb = rng.choice(list(ADVERBS)) if rng.random() < 0.3 else None
    src = subj_src + [verb if not plural else verb[:-1]] + obj_src + ([adverb] if adverb else [])
    tgt = subj_tgt + obj_tgt + ([ADVERBS[adverb]] if adverb else []) + [VERBS[verb] + ("n" if plural else "t")]
    return " ".join(src), " ".join(tgt)


def sentence_pairs(n: int, seed: int = 0, max_adjectives: int = 2) -> list[tuple[str, str]]:
    """``n`` distinct pairs drawn with ``seed`` (fewer if the language has fewer sentences)."""
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    tries = 0
    while len(seen) < n and tries < 20 * n:
        src, tgt = sentence_pair(rng, max_adjectives)
        seen.setdefault(src, tgt)
        tries += 1
    return list(seen.items())
