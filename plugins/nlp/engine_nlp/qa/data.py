"""Question-answering data sources: SQuAD-format JSON (``nlp.squad``) and generated paragraphs
(``nlp.reading_comprehension``).

A sample is ``question ids, <sep>, context ids`` right-padded to ``context_length`` tokens, with a target
``{"span": [start, end]}`` (token positions of the answer in that sequence), the context's text and each
token's character offsets in it (so predicted spans are scored on the context's own text, as SQuAD's script
does), and the gold answers. Questions whose answer does not fit in ``context_length`` tokens are left out
(``facts["dropped"]`` counts them): long SQuAD contexts need a larger ``data.context_length``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Le, Lt
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource, split_indices
from engine.runs import inside
from engine_nlp.qa.squad import Example, exact_match, f1, read_squad
from engine_nlp.qa.synthetic import blind_answer, generate
from engine_nlp.tokenizer import TextTokenizer

SEP = "\x1e"  # the record separator: one token in the char and byte-level tokenizers alike
ANSWERS = "\x1f"  # joins a question's gold answers in a batch (strings collate into lists)


class Spans(Dataset):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        r = self.rows[i]
        return r["ids"], {"span": r["span"], "offsets": r["offsets"], "context": r["context"], "answers": r["answers"]}


class SpanData(DataSource):
    """Examples -> tokenized span samples; subclasses say where the examples come from (`examples`)."""

    def __init__(
        self,
        tokenizer: Literal["char", "bpe"] = "bpe",
        vocab_size: Annotated[int, Ge(260)] = 512,
        context_length: Annotated[int, Gt(8)] = 128,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        seed: int = 0,
    ) -> None:
        self.kind, self.vocab_size, self.context_length = tokenizer, vocab_size, context_length
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self._tokenizer: TextTokenizer | None = None
        self._splits: dict[str, list[Example]] | None = None
        self._rows: dict[str, list[dict[str, Any]]] | None = None
        self.dropped = 0

    def examples(self) -> dict[str, list[Example]]:
        """``{"train": [...], "val": [...], "test": [...]}``."""
        raise NotImplementedError

    def _split(self, examples: list[Example]) -> dict[str, list[Example]]:
        """Split by context, so that no paragraph is in two splits."""
        contexts = list(dict.fromkeys(e.context for e in examples))
        idx = split_indices(len(contexts), self.val_fraction, self.test_fraction, self.seed)
        where = {contexts[int(i)]: name for name, ids in idx.items() for i in ids}
        return {name: [e for e in examples if where[e.context] == name] for name in idx}

    @property
    def splits(self) -> dict[str, list[Example]]:
        if self._splits is None:
            self._splits = self.examples()
        return self._splits

    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            train = self.splits["train"]
            texts = list(dict.fromkeys(e.context for e in train)) + [e.question for e in train] + [SEP]
            self._tokenizer = TextTokenizer.train(self.kind, texts, self.vocab_size)
        return self._tokenizer

    @property
    def sep_id(self) -> int:
        ids = self.tokenizer.encode(SEP)
        if len(ids) != 1:
            raise ConfigError("the tokenizer does not encode the separator as one token", hint="data.tokenizer=bpe")
        return ids[0]

    def _offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        if self.tokenizer.kind == "char":
            return self.tokenizer.encode(text), [(i, i + 1) for i in range(len(text))]
        # A space in front: a name opening the context is the same token (" Alice") as in the question and in
        # the context's other sentences (byte-level BPE gives "Alice" at the start of a text another token).
        enc = self.tokenizer.tokenizer.encode(" " + text)  # type: ignore[attr-defined]
        return list(enc.ids), [(max(a - 1, 0), b - 1) for a, b in enc.offsets]

    def encode(self, question: str, context: str) -> tuple[list[int], list[tuple[int, int]], int]:
        """Ids of ``question <sep> context`` (cut to ``context_length``), context offsets, the context's first index."""
        if not question.strip() or not context.strip():
            raise ConfigError("a question and a context are both needed (one is empty)")
        q = self.tokenizer.encode(question)[: self.context_length // 2]
        ids, offsets = self._offsets(context)
        first = len(q) + 1
        room = self.context_length - first
        return [*q, self.sep_id, *ids[:room]], offsets[:room], first

    def _rows_of(self, examples: list[Example]) -> list[dict[str, Any]]:
        rows = []
        pad = self.tokenizer.pad_id
        for e in examples:
            ids, offsets, first = self.encode(e.question, e.context)
            text, start = e.answers[0]
            end = start + len(text)
            inside_ = [j for j, (a, b) in enumerate(offsets) if b > start and a < end]
            if not inside_ or offsets[-1][1] < end:
                self.dropped += 1
                continue
            x = torch.full((self.context_length,), pad, dtype=torch.long)
            x[: len(ids)] = torch.tensor(ids, dtype=torch.long)
            where = torch.full((self.context_length, 2), -1, dtype=torch.long)
            where[first : first + len(offsets)] = torch.tensor(offsets, dtype=torch.long).reshape(-1, 2)
            span = torch.tensor([first + inside_[0], first + inside_[-1]], dtype=torch.long)
            answers = ANSWERS.join(a for a, _ in e.answers)
            row = {"ids": x, "span": span, "offsets": where, "context": e.context, "answers": answers}
            rows.append({**row, "question": e.question})
        return rows

    @property
    def rows(self) -> dict[str, list[dict[str, Any]]]:
        if self._rows is None:
            self.dropped = 0
            self._rows = {name: self._rows_of(ex) for name, ex in self.splits.items() if ex}
            if not self._rows.get("train"):
                raise ConfigError(
                    f"no training question fits in context_length={self.context_length} tokens",
                    hint="raise data.context_length",
                )
        return self._rows

    @property
    def facts(self) -> dict[str, Any]:
        rows = self.rows
        return {
            "vocab_size": self.tokenizer.vocab_size,
            "context_length": self.context_length,
            "pad_id": self.tokenizer.pad_id,
            "sep_id": self.sep_id,
            "dropped": self.dropped,
            "samples": {k: len(v) for k, v in rows.items()},
        }

    def datasets(self) -> dict[str, Dataset]:
        return {name: Spans(rows) for name, rows in self.rows.items()}

    def save_artifacts(self, run_dir: Path) -> None:
        """Write ``tokenizer.json`` (a reopened run encodes with the same tokenizer)."""
        self.tokenizer.save(inside(run_dir, "tokenizer.json"))

    def load_artifacts(self, run_dir: Path) -> None:
        file = inside(run_dir, "tokenizer.json")
        if file.is_file():
            self._tokenizer, self._rows = TextTokenizer.load(file), None


class Squad(SpanData):
    """SQuAD-format JSON (``data[].paragraphs[].qas[].answers[]`` with ``answer_start``).

    Args:
        path: the training file (default: a small sample bundled with the plugin, to try the pipeline).
        val_path: a validation file (SQuAD's dev set); default: ``val_fraction`` of ``path``'s paragraphs.
        test_path: a test file; default: ``test_fraction`` of ``path``'s paragraphs.
        tokenizer: ``bpe`` (byte-level, trained on the training contexts and questions) or ``char``.
        vocab_size: BPE vocabulary size.
        context_length: tokens per sample (question, separator, context); answers beyond it are left out.
    """

    def __init__(
        self,
        path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        tokenizer: Literal["char", "bpe"] = "bpe",
        vocab_size: Annotated[int, Ge(260)] = 512,
        context_length: Annotated[int, Gt(8)] = 256,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(tokenizer, vocab_size, context_length, val_fraction, test_fraction, seed)
        self.path = path or str(resources.files("engine_nlp.qa") / "sample-squad.json")
        self.val_path, self.test_path = val_path, test_path

    def examples(self) -> dict[str, list[Example]]:
        train = read_squad(self.path)
        if self.val_path and self.test_path:
            return {"train": train, "val": read_squad(self.val_path), "test": read_squad(self.test_path)}
        split = self._split(train)
        if self.val_path:
            split["val"] = read_squad(self.val_path)
        if self.test_path:
            split["test"] = read_squad(self.test_path)
        return split


class ReadingComprehension(SpanData):
    """Generated paragraphs about people (birthplace, year, job, home, counts) and questions on them
    (`engine_nlp.qa.synthetic`): each answer is a span of its paragraph; other people's facts distract.

    Args:
        num_questions: questions generated (three per paragraph).
    """

    def __init__(
        self,
        num_questions: Annotated[int, Ge(30), Le(1_000_000)] = 6000,
        tokenizer: Literal["char", "bpe"] = "bpe",
        vocab_size: Annotated[int, Ge(260)] = 512,
        context_length: Annotated[int, Gt(8)] = 128,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(tokenizer, vocab_size, context_length, val_fraction, test_fraction, seed)
        self.num_questions = num_questions

    def examples(self) -> dict[str, list[Example]]:
        return self._split(generate(self.num_questions, self.seed))

    def baseline_scores(self, split: str = "test") -> dict[str, float]:
        """The name-blind baseline on ``split``'s questions (those the model is scored on): the value of the
        paragraph's first sentence giving the fact asked, whoever it names (`blind_answer`); ``blind_exact_match``,
        ``blind_f1`` (what a model scores that reads the question's fact but not its name)."""
        rows = self.rows.get(split) or []
        if not rows:
            return {}
        guesses = [(blind_answer(r["question"], r["context"]), r["answers"].split(ANSWERS)) for r in rows]
        return {
            "blind_exact_match": sum(exact_match(p, g) for p, g in guesses) / len(rows),
            "blind_f1": sum(f1(p, g) for p, g in guesses) / len(rows),
        }
