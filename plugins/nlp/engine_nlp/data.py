"""Text data sources: a language-modelling corpus in blocks, and labelled texts for classification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Le, Lt
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource, split_indices
from engine.runs import inside
from engine_nlp.rows import read_rows
from engine_nlp.textcodec import TextCodec
from engine_nlp.tokenizer import TextTokenizer
from engine_nlp.windows import BlockDataset, ScoredWindows  # BlockDataset: engine-hf imports it from here


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) and sum below 1"
        )


def _tokenizer(
    tokenizer_file: str | None, kind: Literal["char", "bpe"], texts: list[str], vocab_size: int
) -> TextTokenizer:
    if tokenizer_file:
        return TextTokenizer.load(tokenizer_file)
    return TextTokenizer.train(kind, texts, vocab_size)


def _load_run_tokenizer(source: Any, run_dir: Path) -> bool:
    """Replace ``source``'s tokenizer by the run's ``tokenizer.json``; False (keep it) when the run has none."""
    file = inside(run_dir, "tokenizer.json")  # never through a link leading out of the run
    if not file.is_file():
        return False
    source._tokenizer = TextTokenizer.load(file)
    return True


class TextFiles(TextCodec, DataSource):
    """Local text files as one corpus for language modelling, in blocks of the context length.

    The files are read in the given order (a glob's or folder's matches sorted), concatenated, and split by
    position into contiguous train / val / test parts (train first, test last), so no text of a
    validation block is ever trained on. The tokenizer is trained on the train part only, and saved as
    ``tokenizer.json`` in the run directory. Without ``paths`` the corpus is the running Python's own
    standard library: its top-level ``*.py`` modules in sorted order.

    Args:
        paths: text files, folders (every file below) or glob patterns; default: the Python stdlib sources.
        tokenizer: char (one token per character) or bpe (byte-level BPE trained on the train part).
        vocab_size: BPE vocabulary size, special tokens included (ignored by the char tokenizer).
        context_length: tokens per training block (the model's context).
        max_chars: read at most this many characters of the corpus (None: all of it).
        val_fraction: fraction of the text, after the train part, held out for validation.
        test_fraction: fraction of the text at the end held out for the final test.
        stride: tokens between the starts of consecutive training blocks (default: context_length, no overlap).
        tokenizer_file: reuse this tokenizer.json (e.g. from an earlier run) instead of training one.
        eval_stride: val/test in windows of the context every this many tokens, each scoring only the tokens it
            adds (every token once, with at least context_length - eval_stride of history; `engine_nlp.windows`);
            default: non-overlapping blocks.
    """

    def __init__(
        self,
        paths: list[str] | None = None,
        tokenizer: Literal["char", "bpe"] = "char",
        vocab_size: Annotated[int, Ge(1)] = 1024,
        context_length: Annotated[int, Ge(1)] = 128,
        max_chars: int | None = 2_000_000,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.05,
        stride: int | None = None,
        tokenizer_file: str | None = None,
        eval_stride: Annotated[int, Ge(1)] | None = None,
    ) -> None:
        _check_fractions(val_fraction, test_fraction)
        for name, value in (("context_length", context_length), ("stride", stride), ("eval_stride", eval_stride)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if eval_stride is not None and eval_stride > context_length:
            raise ConfigError(
                f"eval_stride ({eval_stride}) must be at most context_length ({context_length})",
                hint="set data.eval_stride too (e.g. half the context), or data.eval_stride=null: no overlap",
            )
        self.corpus = ""  # what was read: set when the corpus is read
        self._corpus_spec = (list(paths) if paths else None, max_chars, val_fraction, test_fraction)
        self._use_texts(None, (tokenizer_file, tokenizer, vocab_size), context_length, stride, eval_stride)

    def _read_corpus(self) -> dict[str, str]:
        """The text of each split (train first, test last), read now: a reopened run that only encodes and decodes
        text (served, deployed, asked to generate) never reads its corpus, which may not be on this machine."""
        paths, max_chars, val_fraction, test_fraction = self._corpus_spec
        if paths:
            from engine_nlp.corpus import read_files

            text, self.corpus = read_files(paths, max_chars)
        else:
            from engine_nlp.corpus import stdlib_dir, stdlib_text

            text, files_read = stdlib_text(max_chars)
            self.corpus = f"{len(files_read)} stdlib modules of {stdlib_dir()}"
        if not text.strip():
            raise ConfigError(
                f"the corpus is empty ({self.corpus or 'no files'})", hint="point data.paths at non-empty text files"
            )
        n = len(text)
        n_test, n_val = int(n * test_fraction), int(n * val_fraction)
        n_train = n - n_val - n_test
        return {"train": text[:n_train], "val": text[n_train : n_train + n_val], "test": text[n_train + n_val :]}

    def _use_texts(
        self,
        texts: dict[str, str] | None,
        tokenizer_spec: tuple[Any, ...],
        context_length: int,
        stride: int | None,
        eval_stride: int | None = None,
    ) -> None:
        """The text of each split (an empty val/test split is left out; None: `_read_corpus` on first use), tokenised
        and cut into blocks lazily."""
        self._read: dict[str, str] | None = texts
        self._tokenizer_spec = tokenizer_spec
        self._stride, self.eval_stride = stride or context_length, eval_stride
        self.context_length = context_length
        # Tokenizer and token ids are built on first use: a reopened run (``load_artifacts``) reads its own
        # tokenizer.json instead of training one again.
        self._tokenizer: TextTokenizer | None = None
        self._ids: dict[str, torch.Tensor] | None = None
        self._splits: dict[str, BlockDataset] = {}

    @property
    def _texts(self) -> dict[str, str]:
        if self._read is None:
            self._read = self._read_corpus()
        return self._read

    @property
    def tokenizer(self) -> TextTokenizer:
        """The tokenizer: the run's own (after ``load_artifacts``), a given file, or trained on the train part."""
        if self._tokenizer is None:
            file, kind, vocab_size = self._tokenizer_spec
            self._tokenizer = _tokenizer(file, kind, [self._texts["train"]], vocab_size)
        return self._tokenizer

    @property
    def ids(self) -> dict[str, torch.Tensor]:
        """Token ids of each split (``train``, ``val``, ``test``), one long 1-D tensor each."""
        if self._ids is None:
            ids: dict[str, torch.Tensor] = {}
            splits: dict[str, BlockDataset] = {}
            for split, part in self._texts.items():
                if split != "train" and not part:
                    continue
                tokens = torch.tensor(self.tokenizer.encode(part), dtype=torch.long)
                ds = BlockDataset(
                    tokens, self.context_length, self._stride if split == "train" else self.context_length
                )
                if len(ds) == 0:
                    raise ConfigError(
                        f"the {split} text is shorter than one block: {len(tokens)} tokens ({len(part)} characters) "
                        f"for a context_length of {self.context_length} (+1 for the next-token target)",
                        hint="give more text, a smaller data.context_length"
                        + (f", or a larger data.{split}_fraction" if split != "train" else ""),
                    )
                if split != "train" and self.eval_stride is not None:
                    ds = ScoredWindows(tokens, self.context_length, self.eval_stride)
                ids[split], splits[split] = tokens, ds
            self._ids, self._splits = ids, splits
        return self._ids

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "vocab_size": self.tokenizer.vocab_size,
            "context_length": self.context_length,
            "pad_id": self.tokenizer.pad_id,
            "tokenizer": self.tokenizer.kind,
            "tokens": {k: len(v) for k, v in self.ids.items()},
            "characters": {k: len(self._texts[k]) for k in self.ids},
            "corpus": self.corpus,
        }

    def datasets(self) -> dict[str, Dataset]:
        self.ids  # noqa: B018 -- tokenizes on first use
        return dict(self._splits)

    def split_text(self, split: str) -> str:
        """The text of ``split`` (what the compressor baselines compress)."""
        return self._texts[split]

    def save_artifacts(self, run_dir: Path) -> None:
        """Write ``tokenizer.json`` (what generation, prediction and deployment read)."""
        self.tokenizer.save(inside(run_dir, "tokenizer.json"))

    def load_artifacts(self, run_dir: Path) -> None:
        """Use the run's own ``tokenizer.json`` (a reopened run: evaluate, deploy, predict, baselines)."""
        if _load_run_tokenizer(self, run_dir):
            self._ids, self._splits = None, {}

    def load_input(self, path: str) -> torch.Tensor:
        """A text file -> its last ``context_length`` token ids (left-padded with ``<pad>``)."""
        ids = self.tokenizer.encode(Path(path).read_text(encoding="utf-8"))[-self.context_length :]
        ids = [self.tokenizer.pad_id] * (self.context_length - len(ids)) + ids
        return torch.tensor(ids, dtype=torch.long)


# --------------------------------------------------------------------------- classification


class PaddedSequences(Dataset):
    """``(ids right-padded with pad_id to length, label)``: fixed-shape samples batch with the default collate.

    (Padding here rather than in a ``collate_fn`` keeps every consumer that builds its own DataLoader over
    the split, such as the supervised task's pre-flight check and the deploy plugin, working.)
    """

    def __init__(self, ids: list[torch.Tensor], labels: torch.Tensor, pad_id: int, length: int) -> None:
        self.ids, self.labels, self.pad_id, self.length = ids, labels, pad_id, length

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.ids[i][: self.length]
        x = torch.full((self.length,), self.pad_id, dtype=torch.long)
        x[: len(ids)] = ids
        return x, self.labels[i]


def _stratified_subset(train: torch.Tensor, y: torch.Tensor, fraction: float, seed: int | None) -> torch.Tensor:
    """``round(fraction * n_c)`` (at least 1) training indices of each class: the first in the split's seeded order,
    or in an order drawn with ``seed``."""
    labels = y[train]
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    keep = torch.zeros(len(train), dtype=torch.bool)
    for c in torch.unique(labels):
        where = torch.nonzero(labels == c).flatten()
        if g is not None:
            where = where[torch.randperm(len(where), generator=g)]
        keep[where[: max(1, round(fraction * len(where)))]] = True
    return train[keep]


class TextClassification(DataSource):
    """Labelled texts from a CSV or JSONL file; samples are right-padded token ids and a class label.

    Without ``path`` the data is a real labelled set built from the running Python's standard library:
    snippets of 8 consecutive non-blank source lines, labelled with the package they come from (asyncio,
    email, idlelib, importlib, multiprocessing, tkinter, unittest, xml; tests folders excluded; at most
    800 snippets per package). The split is stratified and seeded; the tokenizer is trained on the training
    texts only and saved as ``tokenizer.json`` in the run directory.

    Args:
        path: a .csv file (with a header row) or a .jsonl file (one object per line); default: stdlib snippets.
        text_column: name of the text column / key.
        label_column: name of the label column / key.
        format: csv, jsonl, or auto (from the file's extension).
        tokenizer: bpe (byte-level BPE trained on the training texts) or char.
        vocab_size: BPE vocabulary size, special tokens included (ignored by the char tokenizer).
        max_length: texts are cut to this many tokens, and padded to it.
        max_samples: keep at most this many samples, taken evenly (None: all).
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
        tokenizer_file: reuse this tokenizer.json (e.g. from an earlier run) instead of training one.
        train_fraction: train on this fraction of the training split only (stratified by class, seeded by seed;
            each class keeps at least one sample); validation and test stay whole, so runs with different
            fractions are evaluated on the same texts. A smaller fraction's subset is part of a larger one's.
        subset_seed: draw the train_fraction subset with this seed instead of taking the split's first samples:
            other labelled subsets, the same validation and test texts.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"] | None = None,
        text_column: str = "text",
        label_column: str = "label",
        format: Literal["auto", "csv", "jsonl"] = "auto",
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: Annotated[int, Ge(1)] = 2000,
        max_length: Annotated[int, Ge(1)] = 128,
        max_samples: int | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        tokenizer_file: str | None = None,
        train_fraction: Annotated[float, Gt(0), Le(1)] = 1.0,
        subset_seed: Annotated[int, Ge(0), Le(4294967295)] | None = None,
    ) -> None:
        _check_fractions(val_fraction, test_fraction)
        if not 0 < train_fraction <= 1:
            raise ConfigError(f"train_fraction must be in (0, 1], got {train_fraction}")
        if max_length < 1:
            raise ConfigError(f"max_length must be at least 1, got {max_length}")
        if path is None:
            from engine_nlp.corpus import stdlib_snippets

            rows = stdlib_snippets(max_per_class=800)
            texts, labels = [t for t, _ in rows], [c for _, c in rows]
            self.corpus = "stdlib package snippets"
        else:
            file = Path(path).expanduser()
            if not file.is_file():
                raise ConfigError(f"text file not found: {file}", hint="check data.path")
            texts, labels = read_rows(file, format, text_column, label_column)
            self.corpus = str(file)
        if max_samples is not None and len(texts) > max_samples:
            step = len(texts) / max_samples
            keep = [int(i * step) for i in range(max_samples)]
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        if not texts:
            raise ConfigError(f"{self.corpus}: no samples", hint="the file has a header but no rows")
        self.class_names = sorted(set(labels))
        if len(self.class_names) < 2:
            raise ConfigError(f"{self.corpus}: only one label ({self.class_names[0]!r}); classification needs two")
        index = {c: i for i, c in enumerate(self.class_names)}
        y = torch.tensor([index[c] for c in labels])
        self._idx = split_indices(len(texts), val_fraction, test_fraction, seed, stratify=y)
        if train_fraction < 1:
            self._idx["train"] = _stratified_subset(self._idx["train"], y, train_fraction, subset_seed)
        if not any(texts[i].strip() for i in self._idx["train"].tolist()):
            raise ConfigError(f"{self.corpus}: every training text is empty")
        self._texts, self._y = texts, y
        self._tokenizer_spec = (tokenizer_file, tokenizer, vocab_size)
        self.max_length = max_length
        self._tokenizer: TextTokenizer | None = None  # built on first use, or read back by load_artifacts
        self._splits: dict[str, PaddedSequences] | None = None

    def split_texts(self) -> dict[str, list[str]]:
        """The texts of each split, in the split's order, without labels (train: the train_fraction subset)."""
        return {k: [self._texts[j] for j in i.tolist()] for k, i in self._idx.items()}

    @property
    def tokenizer(self) -> TextTokenizer:
        """The tokenizer: the run's own (after ``load_artifacts``), a given file, or trained on the train texts."""
        if self._tokenizer is None:
            file, kind, vocab_size = self._tokenizer_spec
            train_texts = [self._texts[i] for i in self._idx["train"].tolist()]
            self._tokenizer = _tokenizer(file, kind, train_texts, vocab_size)
        return self._tokenizer

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "problem": "classification",
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
            "vocab_size": self.tokenizer.vocab_size,
            "context_length": self.max_length,
            "pad_id": self.tokenizer.pad_id,
            "tokenizer": self.tokenizer.kind,
            "corpus": self.corpus,
        }

    def datasets(self) -> dict[str, Dataset]:
        if self._splits is None:
            pad, n = self.tokenizer.pad_id, self.max_length
            ids = [torch.tensor(e[:n], dtype=torch.long) for e in self.tokenizer.encode_batch(self._texts)]
            self._splits = {
                k: PaddedSequences([ids[j] for j in i.tolist()], self._y[i], pad, n) for k, i in self._idx.items()
            }
        return dict(self._splits)

    def save_artifacts(self, run_dir: Path) -> None:
        """Write ``tokenizer.json`` (what prediction and deployment read)."""
        self.tokenizer.save(inside(run_dir, "tokenizer.json"))

    def load_artifacts(self, run_dir: Path) -> None:
        """Use the run's own ``tokenizer.json`` (a reopened run: evaluate, deploy, predict, baselines)."""
        if _load_run_tokenizer(self, run_dir):
            self._splits = None

    def load_input(self, path: str) -> torch.Tensor:
        """A text file -> its first ``max_length`` token ids, right-padded with ``<pad>``."""
        ids = self.tokenizer.encode(Path(path).read_text(encoding="utf-8"))[: self.max_length]
        x = torch.full((self.max_length,), self.tokenizer.pad_id, dtype=torch.long)
        x[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return x
