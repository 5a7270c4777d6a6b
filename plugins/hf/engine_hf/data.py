"""Text data encoded by a Hugging Face tokenizer from a local model directory (or GGUF file).

The tokenizer is the model's own, so the facts a model needs flow from it: ``vocab_size``, ``pad_id``,
``eos_id``, ``chat_template``, the longest sequence (``context_length``). A run keeps a copy of the tokenizer
in ``RUN/tokenizer/`` (``save_pretrained``), which a reopened run reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Le, Lt
from engine_nlp.data import BlockDataset
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource, split_indices
from engine.runs import inside
from engine_hf.paths import has_tokenizer, locate

RUN_TOKENIZER = "tokenizer"  # RUN/tokenizer/: the tokenizer files, as save_pretrained writes them


def load_tokenizer(path: str, where: str = "data.tokenizer") -> Any:
    """The tokenizer of a local model directory / GGUF file (``smollm2`` too); one line when there is none."""
    from transformers import AutoTokenizer

    if path is None:
        raise ConfigError(f"set {where}: the local model directory whose tokenizer encodes the text")
    location = locate(path, where, tokenizer=True)
    if not has_tokenizer(location):
        raise ConfigError(
            f"{where}: {location} has no tokenizer files (tokenizer.json, tokenizer_config.json …)",
            hint="save the tokenizer beside the weights: tokenizer.save_pretrained(DIR)",
        )
    try:
        return AutoTokenizer.from_pretrained(str(location.directory), **location.kwargs())
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: cannot load the tokenizer of {location}: {exc}") from None


def token_facts(tok: Any) -> dict[str, Any]:
    """What a model and a task need to know about a tokenizer."""
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
    return {
        "vocab_size": len(tok),
        "pad_id": int(pad),
        "eos_id": eos,
        "bos_id": tok.bos_token_id,
        "chat_template": tok.chat_template,
    }


class _Tokenized(DataSource):
    """What both sources share: the tokenizer (the run's copy once reopened), EncodesText, artifacts."""

    _tok: Any
    _source: str
    context_length: int

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (``transformers.PreTrainedTokenizerBase``)."""
        if self._tok is None:
            self._tok = load_tokenizer(self._source)
        return self._tok

    def encode_text(self, text: str) -> list[int]:
        if not text:
            raise ConfigError("the text is empty")
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) > self.context_length:
            raise ConfigError(f"the text is {len(ids)} tokens, longer than the context of {self.context_length}")
        return list(ids)

    def decode_tokens(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def format_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The messages (role/content) as text through the tokenizer's chat template; one line without one."""
        if not self.tokenizer.chat_template:
            raise ConfigError(f"the tokenizer of {self._source} has no chat template")
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def save_artifacts(self, run_dir: Path) -> None:
        """A copy of the tokenizer in ``RUN/tokenizer/`` (generation, export and deployment read it)."""
        self.tokenizer.save_pretrained(str(inside(run_dir, RUN_TOKENIZER)))

    def load_artifacts(self, run_dir: Path) -> None:
        folder = inside(run_dir, RUN_TOKENIZER)
        if (folder / "tokenizer_config.json").is_file():
            self._tok = load_tokenizer(str(folder), "the run's tokenizer")

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


class HFText(_Tokenized):
    """Local text files for language modelling, encoded by a model directory's tokenizer, in blocks.

    The files are concatenated (documents separated by the tokenizer's end-of-text token) and split by
    position: train first, then validation, then test. Without ``paths``: the Python stdlib sources.

    Args:
        tokenizer: the local model directory (or .gguf file, or ``smollm2``) whose tokenizer encodes the
            text; default: the model's ``model.path``.
        paths: text files; default: the running Python's stdlib sources.
        context_length: tokens per training block.
        max_chars: read at most this many characters (None: all).
        val_fraction: fraction of the text held out for validation (after the train part).
        test_fraction: fraction of the text at the end held out for the final test.
        stride: tokens between the starts of consecutive training blocks (default: context_length).
    """

    def __init__(
        self,
        tokenizer: str | None = None,
        paths: list[str] | None = None,
        context_length: Annotated[int, Ge(1)] = 128,
        max_chars: int | None = 2_000_000,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        stride: Annotated[int, Ge(1)] | None = None,
    ) -> None:
        self._source, self._tok = tokenizer, None
        self.context_length, self.stride = context_length, stride or context_length
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must sum below 1")
        self.fractions = (val_fraction, test_fraction)
        if paths:
            docs = []
            for p in paths:
                file = Path(p).expanduser()
                if not file.is_file():
                    raise ConfigError(f"text file not found: {file}", hint="check data.paths")
                docs.append(file.read_text(encoding="utf-8", errors="replace"))
            self.corpus = ", ".join(str(p) for p in paths)
        else:
            from engine_nlp.corpus import stdlib_text

            docs = [stdlib_text(max_chars)[0]]
            self.corpus = "the Python stdlib sources"
        self._docs = [d[:max_chars] if max_chars else d for d in docs]
        self._splits: dict[str, BlockDataset] | None = None

    def _blocks(self) -> dict[str, BlockDataset]:
        if self._splits is None:
            sep = self.tokenizer.eos_token_id
            ids: list[int] = []
            for doc in self._docs:
                ids += self._encode(doc) + ([sep] if sep is not None else [])
            n = len(ids)
            n_val, n_test = int(n * self.fractions[0]), int(n * self.fractions[1])
            parts = {"train": ids[: n - n_val - n_test], "val": ids[n - n_val - n_test : n - n_test]}
            parts["test"] = ids[n - n_test :]
            self._splits = {}
            for split, part in parts.items():
                stride = self.stride if split == "train" else self.context_length
                blocks = BlockDataset(torch.tensor(part, dtype=torch.long), self.context_length, stride)
                if len(blocks) == 0 and (split == "train" or part):
                    raise ConfigError(
                        f"the {split} text is {len(part)} tokens, shorter than one block of {self.context_length}+1",
                        hint="give more text or a smaller data.context_length",
                    )
                if len(blocks):
                    self._splits[split] = blocks
        return self._splits

    @property
    def facts(self) -> dict[str, Any]:
        return {**token_facts(self.tokenizer), "context_length": self.context_length, "corpus": self.corpus}

    def datasets(self) -> dict[str, Dataset]:
        return dict(self._blocks())

    def load_input(self, path: str) -> torch.Tensor:
        """A text file -> its last ``context_length`` token ids, left-padded with the pad token."""
        ids = self._encode(Path(path).read_text(encoding="utf-8"))[-self.context_length :]
        pad = token_facts(self.tokenizer)["pad_id"]
        return torch.tensor([pad] * (self.context_length - len(ids)) + ids, dtype=torch.long)


class _Padded(Dataset):
    def __init__(self, ids: list[list[int]], labels: torch.Tensor, pad_id: int, length: int) -> None:
        self.ids, self.labels, self.pad_id, self.length = ids, labels, pad_id, length

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.ids[i][: self.length]
        x = torch.full((self.length,), self.pad_id, dtype=torch.long)
        x[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return x, self.labels[i]


class HFTextClassification(_Tokenized):
    """Labelled texts (CSV or JSONL) encoded by a model directory's tokenizer, right-padded to ``max_length``.

    Args:
        path: a .csv file (header row) or .jsonl file (one object per line).
        tokenizer: the local model directory whose tokenizer encodes the text; default: ``model.path``.
        text_column: the text column / key.
        label_column: the label column / key.
        format: csv, jsonl, or auto (from the extension).
        max_length: texts are cut to this many tokens (special tokens included) and padded to it.
        val_fraction: fraction held out for validation (stratified, seeded).
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        tokenizer: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        format: Literal["auto", "csv", "jsonl"] = "auto",
        max_length: Annotated[int, Ge(1)] = 128,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
    ) -> None:
        from engine_nlp.rows import read_rows

        self._source, self._tok, self.context_length = tokenizer, None, max_length
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"text file not found: {file}", hint="check data.path")
        self.texts, labels = read_rows(file, format, text_column, label_column)
        self.class_names = sorted(set(labels))
        if len(self.class_names) < 2:
            raise ConfigError(f"{file}: {len(self.class_names)} label(s); classification needs two")
        self.labels = torch.tensor([self.class_names.index(y) for y in labels], dtype=torch.long)
        self.split = split_indices(len(self.texts), val_fraction, test_fraction, seed, stratify=self.labels)

    @property
    def facts(self) -> dict[str, Any]:
        return {
            **token_facts(self.tokenizer),
            "problem": "classification",
            "num_classes": len(self.class_names),
            "class_names": self.class_names,
            "context_length": self.context_length,
        }

    def datasets(self) -> dict[str, Dataset]:
        pad = token_facts(self.tokenizer)["pad_id"]
        ids = self.tokenizer(self.texts, truncation=True, max_length=self.context_length, verbose=False)["input_ids"]
        return {
            s: _Padded([ids[i] for i in idx.tolist()], self.labels[idx], pad, self.context_length)
            for s, idx in self.split.items()
            if len(idx) or s == "train"
        }

    def load_input(self, path: str) -> torch.Tensor:
        ids = self.tokenizer(Path(path).read_text(encoding="utf-8"), truncation=True, max_length=self.context_length)
        return _Padded([ids["input_ids"]], torch.zeros(1), token_facts(self.tokenizer)["pad_id"], self.context_length)[
            0
        ][0]
