"""Generated reading comprehension: short paragraphs about people, places and numbers, questions on them.

Each paragraph introduces two or three people with a few facts each (a birthplace, a year, a job, a count of
something, a home city) in varied sentence templates; each question asks one fact of one person, so the model
must find the person named in the question and read the fact beside it (the other people's facts are the
distractors). The answer is always a span of the paragraph. Deterministic for a seed (torch-free).
"""

from __future__ import annotations

import random
import re

from engine_nlp.qa.squad import Example

NAMES = ("Alice", "Bruno", "Chen", "Dana", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jana", "Kofi", "Lena",
         "Mateo", "Nina", "Omar", "Petra", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wim", "Yara")  # fmt: skip
CITIES = ("Paris", "Lagos", "Osaka", "Lima", "Oslo", "Cairo", "Quito", "Perth", "Dakar", "Hanoi", "Porto",
          "Turin", "Minsk", "Accra", "Bern", "Riga", "Sofia", "Kyoto")  # fmt: skip
JOBS = ("baker", "pilot", "nurse", "painter", "farmer", "lawyer", "chemist", "sailor", "teacher", "architect",
        "plumber", "dentist", "poet", "carpenter")  # fmt: skip
THINGS = ("cats", "bicycles", "sisters", "violins", "gardens", "boats", "clocks", "brothers")
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "eleven", "twelve")

#: (fact, sentence template, question templates); {n} the person, {v} the value (the answer).
FACTS = {
    "born_in": (("{n} was born in {v}.", "{n} comes from {v}."), ("Where was {n} born?", "Where does {n} come from?")),
    "year": (("{n} was born in the year {v}.", "In {v}, {n} was born."), ("When was {n} born?",
                                                                          "In which year was {n} born?")),
    "job": (("{n} works as a {v}.", "By trade, {n} is a {v}."), ("What does {n} work as?", "What is {n}'s job?")),
    "lives": (("{n} now lives in {v}.", "Today {n} lives in {v}."), ("Where does {n} live?",
                                                                      "Which city does {n} live in?")),
}  # fmt: skip


def _value(fact: str, rng: random.Random) -> str:
    if fact in ("born_in", "lives"):
        return rng.choice(CITIES)
    if fact == "year":
        return str(rng.randint(1900, 2020))
    return rng.choice(JOBS)


def generate(count: int, seed: int = 0, people: tuple[int, int] = (2, 3)) -> list[Example]:
    """``count`` questions, a few per paragraph, answers located by character offset."""
    rng = random.Random(seed)
    out: list[Example] = []
    p = 0
    while len(out) < count:
        names = rng.sample(NAMES, rng.randint(*people))
        sentences: list[tuple[str, str, str]] = []  # (sentence, person, "fact|value")
        for name in names:
            facts = rng.sample(list(FACTS), 3)
            for fact in facts:
                value = _value(fact, rng)
                template = rng.choice(FACTS[fact][0])
                sentence = template.format(n=name, v=value)
                sentences.append((sentence, name, fact + "|" + value))
            thing = rng.choice(THINGS)
            count_word = rng.choice(NUMBERS)
            sentence = f"{name} has {count_word} {thing}."
            sentences.append((sentence, name, f"count:{thing}|{count_word}"))
        rng.shuffle(sentences)
        context, spans = "", []
        for sentence, name, key in sentences:
            start = len(context) + (1 if context else 0)
            context += (" " if context else "") + sentence
            fact, value = key.split("|")
            spans.append((name, fact, value, start + sentence.rindex(value)))  # values never occur in names
        for name, fact, value, start in rng.sample(spans, min(3, len(spans))):
            if fact.startswith("count:"):
                question = f"How many {fact.split(':')[1]} does {name} have?"
            else:
                question = rng.choice(FACTS[fact][1]).format(n=name)
            out.append(Example(f"synthetic-{p}-{len(out)}", question, context, ((value, start),)))
        p += 1
    return out[:count]


def _pattern(template: str) -> re.Pattern[str]:
    """A sentence or question template as a regex: ``{n}`` a name, ``{v}`` the value (a group)."""
    parts = re.split(r"(\{n\}|\{v\})", template)
    body = "".join(r"[A-Z]\w*" if p == "{n}" else r"(?P<v>\w+)" if p == "{v}" else re.escape(p) for p in parts)
    return re.compile(body)


_QUESTIONS = [(fact, _pattern(q)) for fact, (_, qs) in FACTS.items() for q in qs]
_SENTENCES = {fact: [_pattern(s) for s in sentences] for fact, (sentences, _) in FACTS.items()}
_COUNT_Q = re.compile(r"How many (\w+) does [A-Z]\w* have\?")


def blind_answer(question: str, context: str) -> str:
    """The name-blind baseline: the value of the paragraph's first sentence giving the fact the question asks,
    whoever it is about ("" for a question of another form)."""
    count = _COUNT_Q.fullmatch(question)
    if count:
        found = re.search(rf"[A-Z]\w* has (\w+) {re.escape(count.group(1))}\.", context)
        return found.group(1) if found else ""
    fact = next((f for f, p in _QUESTIONS if p.fullmatch(question)), None)
    if fact is None:
        return ""
    for sentence in re.split(r"(?<=\.) ", context):
        for pattern in _SENTENCES[fact]:
            found = pattern.fullmatch(sentence)
            if found:
                return found.group("v")
    return ""
