"""``nlp.unlabelled_texts``: the training texts of a labelled set, labels dropped, as a language-modelling corpus.

For pre-training a GPT on the texts a classifier will later see only a few labels of (semi-supervised learning:
many texts, few labels). The validation split's texts validate the language model; the test split's texts are not
part of the corpus at all, so a classifier initialised from the run is tested on texts its pre-training never read.
``extra_text`` adds more unlabelled text of the same kind (the default labelled set only), never a validation or
test text.
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le, Lt

from engine import ConfigError
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
        extra_text: more unlabelled training text, for the default labelled set (no ``path``) only: none; or
            snippets, the snippets of the 8 packages that the labelled set leaves out (it keeps at most 800 a
            package, idlelib has 2,172), cut from the same files the same way, without overlap. A snippet whose
            text is also a labelled text (a licence header repeated in two files) is left out, so no validation
            or test text is read.
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"] | None = None,
        text_column: str = "text",
        label_column: str = "label",
        format: Literal["auto", "csv", "jsonl"] = "auto",
        max_samples: int | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: Annotated[int, Ge(1)] = 2000,
        context_length: Annotated[int, Ge(1)] = 128,
        stride: int | None = None,
        tokenizer_file: str | None = None,
        extra_text: Literal["none", "snippets"] = "none",
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
        train = list(split["train"])
        self.corpus = f"the training texts of {labelled.corpus} ({len(train)} of them), without labels"
        if extra_text != "none":
            more = _other_snippets(path, split)
            train += more
            self.corpus += f", and {len(more)} stdlib snippets the labelled set leaves out"
        texts = {"train": SEPARATOR.join(train), "val": SEPARATOR.join(split.get("val", [])), "test": ""}
        self._use_texts(texts, (tokenizer_file, tokenizer, vocab_size), context_length, stride)


def _other_snippets(path: str | None, split: dict[str, list[str]]) -> list[str]:
    """The snippets of the default labelled set's packages that it does not hold, minus any held-out text."""
    if path is not None:
        raise ConfigError(
            "extra_text=snippets adds stdlib snippets: it is for the default labelled set (no data.path)",
            hint="leave data.extra_text=none with your own data.path",
        )
    from engine_nlp.corpus import stdlib_snippets

    taken = {t for texts in split.values() for t in texts}  # every labelled text: train, validation and test
    return [t for t, _ in stdlib_snippets(max_per_class=10**9) if t not in taken]
