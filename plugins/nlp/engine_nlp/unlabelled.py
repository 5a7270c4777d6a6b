"""``nlp.unlabelled_texts``: the training texts of a labelled set, labels dropped, as a language-modelling corpus.

For pre-training a GPT on the texts a classifier will later see only a few labels of (semi-supervised learning:
many texts, few labels). The validation split's texts validate the language model; the test split's texts are not
part of the corpus at all, so a classifier initialised from the run is tested on texts its pre-training never read.
"""

from __future__ import annotations

from typing import Literal

from engine.errors import ConfigError
from engine_nlp.data import TextClassification, TextFiles

#: Between two texts of the corpus: a blank line, as between the stdlib modules of ``nlp.text_files``.
SEPARATOR = "\n\n"


class UnlabelledTexts(TextFiles):
    """The training split of ``nlp.text_classification``'s data, without labels, in blocks for language modelling.

    The labelled set is read and split exactly as ``nlp.text_classification`` does with the same ``path``, columns,
    ``max_samples``, fractions and ``seed`` (default: the stdlib package snippets of ``nlp/classify``). Every text of
    its training split is training text (a fine-tuning run with ``train_fraction`` < 1 uses the labels of a part
    of them), joined in the split's order with a blank line between texts; the validation split's texts are the
    validation text; the test split is left out. The tokenizer is trained on the training text and saved as
    ``tokenizer.json``, which a classifier initialised from the run must reuse (``data.tokenizer_file``).

    Args:
        path: the labelled .csv or .jsonl file (default: the stdlib package snippets).
        text_column: name of the text column / key.
        label_column: name of the label column / key (read for the stratified split only).
        format: csv, jsonl, or auto (from the file's extension).
        max_samples: keep at most this many samples, taken evenly (None: all).
        val_fraction: fraction held out for validation (as in nlp.text_classification).
        test_fraction: fraction held out for the classifier's test, never read here.
        seed: seed of the split (as in nlp.text_classification).
        tokenizer: bpe (byte-level BPE trained on the training text) or char.
        vocab_size: BPE vocabulary size, special tokens included (ignored by the char tokenizer).
        context_length: tokens per block (the model's context).
        stride: tokens between the starts of consecutive training blocks (default: context_length).
        tokenizer_file: reuse this tokenizer.json instead of training one.
    """

    def __init__(
        self,
        path: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        format: Literal["auto", "csv", "jsonl"] = "auto",
        max_samples: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: int = 2000,
        context_length: int = 128,
        stride: int | None = None,
        tokenizer_file: str | None = None,
    ) -> None:
        if context_length < 1:
            raise ConfigError(f"context_length must be at least 1, got {context_length}")
        if stride is not None and stride < 1:
            raise ConfigError(f"stride must be at least 1, got {stride}")
        labelled = TextClassification(
            path=path,
            text_column=text_column,
            label_column=label_column,
            format=format,
            max_samples=max_samples,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )
        split = labelled.split_texts()
        texts = {"train": SEPARATOR.join(split["train"]), "val": SEPARATOR.join(split.get("val", [])), "test": ""}
        self.corpus = f"the training texts of {labelled.corpus} ({len(split['train'])} of them), without labels"
        self._use_texts(texts, (tokenizer_file, tokenizer, vocab_size), context_length, stride)
