"""``nlp.instructions``: instruction / chat examples for fine-tuning a causal LM, the loss on the replies only.

Each example is formatted with the chat template (`engine_nlp.chat`), tokenised, and cut to
``context_length + 1`` tokens (longer ones are truncated and counted: ``facts["truncated"]``). Samples are
``(tokens [T], targets [T])`` with the targets ``-100`` (ignored by the loss) everywhere but on the
assistant's replies. Batches are padded to their longest sample (``collate_fn``); with ``pack=true``
several examples share one context (each keeps its own mask; attention is not cut between them).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Lt
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource
from engine.runs import inside
from engine_nlp.chat import DEFAULT_END, generated_examples, read_examples, renderer, segments
from engine_nlp.tokenizer import TextTokenizer

IGNORE = -100


class Examples(Dataset):
    """Token ids and masked targets of whole examples (or packed groups of them), variable length."""

    def __init__(self, rows: list[tuple[list[int], list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, labels = self.rows[i]
        return torch.tensor(ids[:-1], dtype=torch.long), torch.tensor(labels[1:], dtype=torch.long)


class PadCollate:
    """Right-pad a batch's tokens with ``pad_id`` and its targets with -100 to its longest sample (picklable)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        n = max(len(x) for x, _ in batch)
        xs = torch.full((len(batch), n), self.pad_id, dtype=torch.long)
        ys = torch.full((len(batch), n), IGNORE, dtype=torch.long)
        for i, (x, y) in enumerate(batch):
            xs[i, : len(x)], ys[i, : len(y)] = x, y
        return xs, ys


def pack(rows: list[tuple[list[int], list[int]]], size: int) -> list[tuple[list[int], list[int]]]:
    """Examples concatenated in order into groups of at most ``size`` tokens (each keeps its own targets)."""
    out: list[tuple[list[int], list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    for a, b in rows:
        if ids and len(ids) + len(a) > size:
            out.append((ids, labels))
            ids, labels = [], []
        ids, labels = ids + a, labels + b
    if ids:
        out.append((ids, labels))
    return out


class Instructions(DataSource):
    """Instruction or chat examples (JSONL/JSON; default: a generated set with checkable answers), loss on replies.

    Args:
        path: a .jsonl file (one example per line) or a .json list, each {prompt, response}, Alpaca's {instruction,
            input, output}, or {messages: [{role, content}, …]}. Default: generated arithmetic and word instructions.
        num_examples: size of the generated set (without path).
        context_length: tokens per sample (the model's context); longer examples are truncated, and counted.
        pack: pack several examples into each context (fewer padded tokens; the loss mask stays per example).
        tokenizer: char or bpe, trained on the training examples (unless tokenizer_file is given).
        vocab_size: BPE vocabulary size.
        tokenizer_file: reuse this tokenizer.json (the pre-trained model's: filled from model.init_from's run).
        chat_template: a Jinja chat template; default: the tokenizer's (tokenizer_config.json beside
            tokenizer_file), else the engine's documented default (<|user|> … <|end|>).
        val_fraction: fraction of the examples held out for validation.
        test_fraction: fraction held out for the test (exact-match accuracy of generations).
        seed: seed of the generated set and of the split.
    """

    collate_fn: Any

    def __init__(
        self,
        path: str | None = None,
        num_examples: Annotated[int, Ge(10)] = 4000,
        context_length: Annotated[int, Ge(8)] = 128,
        pack: bool = False,
        tokenizer: Literal["char", "bpe"] = "char",
        vocab_size: Annotated[int, Ge(1)] = 1024,
        tokenizer_file: str | None = None,
        chat_template: str | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        seed: int = 0,
    ) -> None:
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must sum below 1")
        examples = read_examples(path) if path else generated_examples(num_examples, seed)
        self.corpus = str(path) if path else f"{num_examples} generated instructions (seed {seed})"
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        n_test, n_val = int(len(order) * test_fraction), int(len(order) * val_fraction)
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
        self.examples = {k: [examples[i] for i in v] for k, v in parts.items() if v or k == "train"}
        self.context_length, self.pack = context_length, pack
        self._spec = (tokenizer_file, tokenizer, vocab_size)
        self._tokenizer: TextTokenizer | None = None
        self._template, self.template_from, special = chat_template, "given", {}
        if chat_template is None:
            self._template, special = _tokenizer_template(tokenizer_file)
            self.template_from = "tokenizer" if self._template else "default"
        self.render = renderer(self._template, special)
        self.end = special.get("eos_token") or DEFAULT_END if self._template else DEFAULT_END
        self._rows: dict[str, list[tuple[list[int], list[int]]]] | None = None
        self.truncated = self.dropped = 0

    # ------------------------------------------------------------------ tokens
    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            file, kind, vocab_size = self._spec
            if file:
                self._tokenizer = TextTokenizer.load(file)
            else:
                texts = ["".join(t for t, _ in segments(m, self.render)) for m in self.examples["train"]]
                self._tokenizer = TextTokenizer.train(kind, texts, vocab_size)
        return self._tokenizer

    def encode_example(self, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
        """Token ids of a formatted example and its targets: the ids on the replies, -100 elsewhere."""
        ids: list[int] = []
        labels: list[int] = []
        for text, trained in segments(messages, self.render):
            part = self.tokenizer.encode(text)
            ids += part
            labels += part if trained else [IGNORE] * len(part)
        return ids, labels

    @property
    def rows(self) -> dict[str, list[tuple[list[int], list[int]]]]:
        if self._rows is None:
            rows: dict[str, list[tuple[list[int], list[int]]]] = {}
            self.truncated = self.dropped = 0
            for split, examples in self.examples.items():
                out = []
                for messages in examples:
                    ids, labels = self.encode_example(messages)
                    if len(ids) > self.context_length + 1:
                        self.truncated += 1
                        ids, labels = ids[: self.context_length + 1], labels[: self.context_length + 1]
                    if all(v == IGNORE for v in labels[1:]):
                        self.dropped += 1  # no reply token left within the context
                        continue
                    out.append((ids, labels))
                if not out and split == "train":
                    raise ConfigError(
                        f"no training example keeps a reply within data.context_length={self.context_length}",
                        hint="raise data.context_length",
                    )
                rows[split] = pack(out, self.context_length + 1) if self.pack else out
            if self.truncated:
                print(
                    f"nlp.instructions: {self.truncated} example(s) longer than {self.context_length + 1} tokens "
                    f"truncated ({self.dropped} of them lost their whole reply and were dropped)",
                    file=sys.stderr,
                )
            self._rows = rows
        return self._rows

    @property
    def collate_fn(self) -> PadCollate:  # type: ignore[override]
        return PadCollate(self.tokenizer.pad_id)

    @property
    def facts(self) -> dict[str, Any]:
        rows = self.rows
        lengths = [len(ids) - 1 for ids, _ in rows["train"]]
        return {
            "vocab_size": self.tokenizer.vocab_size,
            "context_length": self.context_length,
            "pad_id": self.tokenizer.pad_id,
            "tokenizer": self.tokenizer.kind,
            "examples": {k: len(v) for k, v in self.examples.items()},
            "samples": {k: len(v) for k, v in rows.items()},
            "mean_length": round(sum(lengths) / max(len(lengths), 1), 1),  # tokens per training sample
            "max_length": max(lengths, default=0),  # what data.context_length needs to keep every example whole
            "truncated": self.truncated,
            "dropped": self.dropped,
            "packed": self.pack,
            "chat_template": self.template_from,
            "corpus": self.corpus,
        }

    def datasets(self) -> dict[str, Dataset]:
        return {k: Examples(v) for k, v in self.rows.items() if v}

    # ------------------------------------------------------------------ run artifacts, text in / out
    def save_artifacts(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")
        if self._template:
            from engine.runs import write_text_atomic

            write_text_atomic(Path(run_dir) / "chat_template.jinja", self._template)

    def load_artifacts(self, run_dir: Path) -> None:
        file = inside(Path(run_dir), "tokenizer.json")
        if file.is_file():
            self._tokenizer = TextTokenizer.load(file)
            self._rows = None

    def encode_text(self, text: str) -> list[int]:
        if not text:
            raise ConfigError("the prompt is empty")
        return list(self.tokenizer.encode_prompt(text))

    def decode_tokens(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    @property
    def chat_template(self) -> str:
        """The Jinja template the examples are formatted with (the default one unless config or tokenizer has one)."""
        from engine_nlp.chat import DEFAULT_TEMPLATE

        return self._template or DEFAULT_TEMPLATE

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text of a conversation, ready for the assistant's reply (the generation prompt added)."""
        return self.render(messages, True)


def _tokenizer_template(tokenizer_file: str | None) -> tuple[str | None, dict[str, str]]:
    """The chat template (and special tokens) saved beside ``tokenizer_file`` by Hugging Face tokenizers:
    ``chat_template.jinja`` or the ``chat_template`` of ``tokenizer_config.json``; (None, {}) without one."""
    if not tokenizer_file:
        return None, {}
    folder = Path(tokenizer_file).expanduser().parent
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    template = data.get("chat_template")
    if isinstance(template, list):  # several named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    jinja = folder / "chat_template.jinja"
    if not isinstance(template, str) and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    special = {}
    for key in ("bos_token", "eos_token"):
        value = data.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            special[key] = value
    return (template if isinstance(template, str) else None), special
