"""Parallel-text data sources: sentence pairs from a file (``nlp.parallel_text``) or generated
(``nlp.synthetic_translation``); samples are (source ids, ``<s>`` target ids ``</s>``), padded per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Le, Lt
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource, split_indices
from engine.runs import inside
from engine_nlp.seq2seq.pairs import read_pairs
from engine_nlp.tokenizer import TextTokenizer

BOS, EOS = "<s>", "</s>"
FILES = {"source": "tokenizer.json", "target": "target_tokenizer.json"}


def with_specials(tok: TextTokenizer) -> TextTokenizer:
    """``tok`` with ``<s>`` and ``</s>`` added as special tokens (dropped by decoding)."""
    if tok.tokenizer.token_to_id(BOS) is None or tok.tokenizer.token_to_id(EOS) is None:
        tok.tokenizer.add_special_tokens([BOS, EOS])
    return TextTokenizer(tok.tokenizer, tok.kind)


class PairDataset(Dataset):
    """``(source ids + </s>, <s> + target ids + </s>)`` as 1-D long tensors (cut to the length limits)."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]]) -> None:
        self.src, self.tgt = src, tgt

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.src[i], dtype=torch.long), torch.tensor(self.tgt[i], dtype=torch.long)


def pad_batch(rows: list[list[int]] | list[torch.Tensor], pad_id: int) -> torch.Tensor:
    """Right-pad rows of ids to the longest row: ``[B, max length]``."""
    n = max(len(r) for r in rows)
    out = torch.full((len(rows), n), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


class _Collate:
    """Pads each batch to its own longest source and target (a picklable collate_fn)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_batch([s for s, _ in samples], self.pad_id), pad_batch([t for _, t in samples], self.pad_id)


class PairSource(DataSource):
    """Sentence pairs, split and tokenised (the base of both parallel-text sources)."""

    def _use_pairs(
        self, pairs: list[tuple[str, str]], where: str, tokenizer: str, vocab_size: int, shared: bool,
        max_source_length: int, max_target_length: int, val_fraction: float, test_fraction: float, seed: int,
    ) -> None:  # fmt: skip
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(f"val_fraction ({val_fraction}) + test_fraction ({test_fraction}) must be below 1")
        pairs = [(s, t) for s, t in pairs if s.strip() and t.strip()]
        if len(pairs) < 3:
            raise ConfigError(f"{where}: {len(pairs)} non-empty sentence pair(s); a run needs at least 3")
        self.corpus, self.pairs = where, pairs
        self._idx = {k: v.tolist() for k, v in split_indices(len(pairs), val_fraction, test_fraction, seed).items()}
        self._spec = (tokenizer, vocab_size, shared)
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self._tok: dict[str, TextTokenizer] | None = None
        self._splits: dict[str, PairDataset] | None = None

    def split_pairs(self, split: str) -> list[tuple[str, str]]:
        return [self.pairs[i] for i in self._idx.get(split, [])]

    # ------------------------------------------------------------------ tokenizers
    @property
    def tokenizers(self) -> dict[str, TextTokenizer]:
        """``{"source": ..., "target": ...}``: trained on the training pairs (one shared, or one per side)."""
        if self._tok is None:
            kind, vocab_size, shared = self._spec
            train = self.split_pairs("train")
            src, tgt = [s for s, _ in train], [t for _, t in train]
            if shared:
                one = with_specials(TextTokenizer.train(kind, src + tgt, vocab_size))
                self._tok = {"source": one, "target": one}
            else:
                self._tok = {
                    "source": with_specials(TextTokenizer.train(kind, src, vocab_size)),
                    "target": with_specials(TextTokenizer.train(kind, tgt, vocab_size)),
                }
        return self._tok

    def _specials(self, side: str) -> tuple[int, int, int]:
        tok = self.tokenizers[side]
        return tok.pad_id, tok.tokenizer.token_to_id(BOS), tok.tokenizer.token_to_id(EOS)

    @property
    def facts(self) -> dict[str, Any]:
        tok = self.tokenizers
        pad, bos, eos = self._specials("target")
        return {
            "src_vocab_size": tok["source"].vocab_size,
            "tgt_vocab_size": tok["target"].vocab_size,
            "pad_id": pad,
            "bos_id": bos,
            "eos_id": eos,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "shared_vocab": tok["source"] is tok["target"],
            "tokenizer": tok["source"].kind,
            "pairs": {k: len(v) for k, v in self._idx.items()},
            "corpus": self.corpus,
        }

    @property
    def collate_fn(self) -> _Collate:
        return _Collate(self.tokenizers["target"].pad_id)

    def encode_pair_side(self, text: str, side: str) -> list[int]:
        """Ids of one sentence with the model's markers: source ``ids </s>``, target ``<s> ids </s>``."""
        tok = self.tokenizers[side]
        _, bos, eos = self._specials(side)
        if side == "source":
            return [*tok.encode(text)[: self.max_source_length - 1], eos]
        return [bos, *tok.encode(text)[: self.max_target_length - 2], eos]

    def datasets(self) -> dict[str, Dataset]:
        if self._splits is None:
            out = {}
            for split, idx in self._idx.items():
                rows = [self.pairs[i] for i in idx]
                src = [self.encode_pair_side(s, "source") for s, _ in rows]
                tgt = [self.encode_pair_side(t, "target") for _, t in rows]
                out[split] = PairDataset(src, tgt)
            self._splits = out
        return dict(self._splits)

    # ------------------------------------------------------------------ artifacts
    def save_artifacts(self, run_dir: Path) -> None:
        """Write ``tokenizer.json`` (source side) and ``target_tokenizer.json`` (the same file when shared)."""
        for side, name in FILES.items():
            self.tokenizers[side].save(inside(run_dir, name))

    def load_artifacts(self, run_dir: Path) -> None:
        """Use the run's own tokenizers (a reopened run encodes as it was trained)."""
        files = {side: inside(run_dir, name) for side, name in FILES.items()}
        if all(f.is_file() for f in files.values()):
            loaded = {side: with_specials(TextTokenizer.load(f)) for side, f in files.items()}
            if files["source"].read_bytes() == files["target"].read_bytes():
                loaded["target"] = loaded["source"]
            self._tok, self._splits = loaded, None

    # ------------------------------------------------------------------ text in, text out
    def encode_text(self, text: str) -> list[int]:
        """A source sentence's ids (with ``</s>``); ConfigError for empty text, too long text, unknown characters."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("empty input text: give a sentence to translate")
        tok = self.tokenizers["source"]
        bad = tok.unknown_chars(text)
        if bad:
            shown = ", ".join(repr(c) for c in bad[:10])
            raise ConfigError(f"the input has {len(bad)} character(s) outside the source vocabulary: {shown}")
        ids = tok.encode(text)
        if len(ids) + 1 > self.max_source_length:
            raise ConfigError(
                f"the input is {len(ids) + 1} tokens long (with </s>), over the limit of {self.max_source_length}"
            )
        return [*ids, self._specials("source")[2]]

    def decode_tokens(self, ids: Any) -> str:
        """The target text of generated ids (``<s>``, ``</s>`` and ``<pad>`` dropped)."""
        return self.tokenizers["target"].decode([int(i) for i in ids])

    def decode_source(self, ids: Any) -> str:
        return self.tokenizers["source"].decode([int(i) for i in ids])

    def load_input(self, path: str) -> list[list[int]]:
        """A UTF-8 text file, one sentence per line (blank lines skipped) -> the ids of each line."""
        file = Path(path).expanduser()
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ConfigError(f"{file} is not UTF-8 text", hint="convert it: iconv -t UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
        lines = [line for line in lines if line.strip()]
        if not lines:
            raise ConfigError(f"{file} has no text: give one sentence per line")
        return [self.encode_text(line) for line in lines]

    def baseline_scores(self, split: str = "test") -> dict[str, float]:
        """Copy and word-dictionary baselines' BLEU and chrF on ``split`` (dictionary learnt on the training pairs)."""
        from engine_nlp.seq2seq.baselines import baseline_scores

        return baseline_scores(self.split_pairs("train"), self.split_pairs(split))


_Frac = Annotated[float, Ge(0), Lt(1)]
_Seed = Annotated[int, Ge(0), Le(4294967295)]


class ParallelText(PairSource):
    """Sentence pairs from a file: TSV/CSV/JSONL with ``source``/``target`` columns, or a TSV without header.

    A TSV whose first row does not name the two columns is read as Tatoeba ships it: the first two columns of
    each row are source and target, further columns (ids, licences) ignored. Empty pairs are dropped. The split
    is seeded; the tokenizers (one shared, or one per side) are trained on the training pairs only and saved as
    ``tokenizer.json`` (source) and ``target_tokenizer.json`` in the run.

    Args:
        path: the file of sentence pairs.
        format: auto (from the extension: .tsv/.txt tab-separated, .csv, .jsonl), tsv, csv or jsonl.
        source_column: column / key of the source sentence.
        target_column: column / key of the target sentence.
        tokenizer: bpe (byte-level BPE) or char.
        vocab_size: BPE vocabulary size per tokenizer (ignored by char).
        shared_vocab: one tokenizer for both sides (trained on both), else one per side.
        max_source_length: source tokens kept (with ``</s>``); longer sentences are cut, longer inputs refused.
        max_target_length: target tokens kept (with ``<s>`` and ``</s>``): the longest generated output.
        max_pairs: keep at most this many pairs, the first ones (None: all).
        val_fraction: fraction of the pairs held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        format: Literal["auto", "tsv", "csv", "jsonl"] = "auto",
        source_column: str = "source",
        target_column: str = "target",
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: Annotated[int, Ge(1)] = 4000,
        shared_vocab: bool = False,
        max_source_length: Annotated[int, Ge(2)] = 64,
        max_target_length: Annotated[int, Ge(3)] = 64,
        max_pairs: Annotated[int, Ge(3)] | None = None,
        val_fraction: _Frac = 0.1,
        test_fraction: _Frac = 0.1,
        seed: _Seed = 0,
    ) -> None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"sentence-pair file not found: {file}", hint="check data.path")
        pairs = read_pairs(file, format, source_column, target_column)
        if max_pairs is not None:
            pairs = pairs[:max_pairs]
        self._use_pairs(pairs, str(file), tokenizer, vocab_size, shared_vocab, max_source_length, max_target_length,
                        val_fraction, test_fraction, seed)  # fmt: skip


class SyntheticTranslation(PairSource):
    """A generated language pair with reordering and agreement (``engine_nlp.seq2seq.synthetic``).

    English-like SVO sentences to an invented SOV language whose adjectives follow their noun and agree with its
    gender and number, and whose verb agrees with the subject: ``the old kings find the happy teacher`` ->
    ``lo rexi vetai lo lera fele trovn``. Distinct sentences, split at random; no test sentence is trained on.

    Args:
        num_pairs: distinct sentence pairs generated.
        max_adjectives: adjectives per noun phrase, at most.
        data_seed: seed of the generated language sample.
        tokenizer: bpe (byte-level BPE) or char.
        vocab_size: BPE vocabulary size per tokenizer (ignored by char).
        shared_vocab: one tokenizer for both sides, else one per side.
        max_source_length: source tokens kept (with ``</s>``).
        max_target_length: target tokens kept (with ``<s>`` and ``</s>``).
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
    """

    def __init__(
        self,
        num_pairs: Annotated[int, Ge(10)] = 20000,
        max_adjectives: Annotated[int, Ge(0), Le(4)] = 2,
        data_seed: _Seed = 0,
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: Annotated[int, Ge(1)] = 400,
        shared_vocab: bool = False,
        max_source_length: Annotated[int, Ge(2)] = 32,
        max_target_length: Annotated[int, Ge(3)] = 32,
        val_fraction: _Frac = 0.05,
        test_fraction: _Frac = 0.05,
        seed: _Seed = 0,
    ) -> None:
        from engine_nlp.seq2seq.synthetic import sentence_pairs

        pairs = sentence_pairs(num_pairs, data_seed, max_adjectives)
        where = f"synthetic language pair ({len(pairs)} pairs, data_seed {data_seed})"
        self._use_pairs(pairs, where, tokenizer, vocab_size, shared_vocab, max_source_length, max_target_length,
                        val_fraction, test_fraction, seed)  # fmt: skip
