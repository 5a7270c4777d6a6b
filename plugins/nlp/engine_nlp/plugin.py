"""The nlp plugin: declarations only (no torch, tokenizers or numpy imported here)."""

from __future__ import annotations

import argparse

from engine import CommandSink, Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"

_CLS_FACTS = ("problem", "num_classes", "class_names", "vocab_size", "context_length", "pad_id")
_LM_FACTS = ("vocab_size", "context_length", "pad_id")
_S2S_FACTS = (
    "src_vocab_size",
    "tgt_vocab_size",
    "pad_id",
    "bos_id",
    "eos_id",
    "max_source_length",
    "max_target_length",
)
_S2S = "engine_nlp.seq2seq"
_QA_FACTS = ("vocab_size", "context_length", "pad_id", "sep_id")
#: ``model.init_from`` weights: data encoded by their tokenizer, the heads they were trained with (torch-free).
_CHECK = "engine_nlp.checks:check_model"


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_nlp.models"
    return [
        Component(
            "gpt",
            f"{m}:GPT",
            "Decoder-only transformer LM (SDPA causal attention, learned/rotary positions)",
            adapters=("engine_nlp.adapters:hf_gpt2_to_gpt",),
            check=_CHECK,
        ),
        Component(
            "transformer_classifier",
            f"{m}:TransformerClassifier",
            "Transformer encoder text classifier: [CLS] pooling, padding masked",
            adapters=("engine_nlp.adapters:gpt_to_classifier",),
            check=_CHECK,
        ),
        Component(
            "span_qa",
            "engine_nlp.qa.model:SpanQA",
            "Extractive QA: the transformer classifier's encoder with start/end logits per token",
            adapters=("engine_nlp.qa.model:classifier_to_span", "engine_nlp.adapters:gpt_to_classifier"),
            check=_CHECK,
        ),
        Component(
            "lstm_classifier", f"{m}:LSTMClassifier", "(Bi)LSTM text classifier over packed sequences", check=_CHECK
        ),
        Component(
            "seq2seq",
            f"{_S2S}.model:Seq2SeqTransformer",
            "Encoder-decoder transformer (SDPA, padding masked, tied target embeddings) with a KV cache for decoding",
        ),
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    m = "engine_nlp.data"
    return [
        # Classification first: the conformance kit builds every model from the first source's facts.
        Component(
            "text_classification",
            f"{m}:TextClassification",
            "Labelled texts from CSV/JSONL (default: stdlib code snippets by package), BPE or char tokens",
            facts=_CLS_FACTS,
        ),
        Component(
            "text_files",
            f"{m}:TextFiles",
            "Local text files (default: the Python stdlib sources) in context-length blocks, split by position",
            facts=_LM_FACTS,
            task="nlp.language_modeling",
        ),
        Component(
            "unlabelled_texts",
            "engine_nlp.unlabelled:UnlabelledTexts",
            "The training texts of a labelled set (default: nlp/classify's), labels dropped, for LM pre-training",
            facts=_LM_FACTS,
            task="nlp.language_modeling",
        ),
        Component(
            "reading_comprehension",
            "engine_nlp.qa.data:ReadingComprehension",
            "Generated paragraphs about people, places and numbers, with questions whose answers are spans",
            facts=_QA_FACTS,
            task="nlp.extractive_qa",
        ),
        Component(
            "squad",
            "engine_nlp.qa.data:Squad",
            "SQuAD-format JSON (data/paragraphs/qas/answers with answer_start) for extractive QA",
            facts=_QA_FACTS,
            task="nlp.extractive_qa",
        ),
        Component(
            "instructions",
            "engine_nlp.instructions:Instructions",
            "Instruction/chat examples (JSONL: prompt/response, Alpaca, messages; default: generated), loss on replies",
            facts=_LM_FACTS,
            task="nlp.instruct",
            check="engine_nlp.checks:check_instructions",
        ),
        Component(
            "parallel_text",
            f"{_S2S}.data:ParallelText",
            "Sentence pairs from TSV (Tatoeba's, no header), CSV or JSONL; BPE or char tokenizers, shared or not",
            facts=_S2S_FACTS,
            task="nlp.seq2seq",
        ),
        Component(
            "synthetic_translation",
            f"{_S2S}.data:SyntheticTranslation",
            "A generated language pair with reordering and agreement (SVO to SOV, gender and number endings)",
            facts=_S2S_FACTS,
            task="nlp.seq2seq",
        ),
    ]


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "language_modeling",
            "engine_nlp.task:LanguageModelingTask",
            "Next-token prediction: val/loss, val/perplexity, val/bits_per_token, tokens/s",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"optimizer": "nlp.gpt_adamw", "scheduler": None},
            required_slots=("model",),
        ),
        Component(
            "extractive_qa",
            "engine_nlp.qa.task:ExtractiveQATask",
            "Extractive QA: start/end cross-entropy, best-span decoding, SQuAD exact match and F1",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"model": "nlp.span_qa", "optimizer": "nlp.gpt_adamw", "scheduler": None},
            required_slots=("model",),
        ),
        Component(
            "instruct",
            "engine_nlp.instruct_task:InstructionTask",
            "Language modelling on instruction data: loss on replies, exact-match accuracy of greedy replies",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"optimizer": "nlp.gpt_adamw", "scheduler": None},
        ),
        Component(
            "seq2seq",
            f"{_S2S}.task:Seq2SeqTask",
            "Sequence to sequence: label-smoothed cross-entropy; BLEU/chrF (sacrebleu), exact match; beam search",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"model": "nlp.seq2seq", "optimizer": "adamw", "scheduler": None},
            required_slots=("model",),
        ),
    ]


@hookimpl
def engine_optimizers() -> list[Component]:
    return [
        Component(
            "gpt_adamw",
            "engine_nlp.optim:gpt_adamw",
            "AdamW, decay on matrices only, fused kernel (transformers)",
            check="engine_nlp.optim:check_adamw",
        )
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "char-gpt",
            "engine_nlp:recipes/char-gpt.yaml",
            "Character-level GPT on the Python stdlib sources: a few minutes of CPU, beside xz/zstd on its test text",
            # bits per character of the test text; the compressors' are computed by the run on the same text
            targets=("test/bits_per_char <= test/xz_bits_per_char", "test/bits_per_char <= test/zstd_bits_per_char"),
        ),
        Recipe(
            "bpe-gpt",
            "engine_nlp:recipes/bpe-gpt.yaml",
            "GPT on BPE tokens of the whole Python stdlib: char-gpt's compute, beats xz -9e and zstd -19 on its test",
            targets=("test/bits_per_char <= test/xz_bits_per_char", "test/bits_per_char <= test/zstd_bits_per_char"),
        ),
        Recipe(
            "classify",
            "engine_nlp:recipes/classify.yaml",
            "Transformer classifier: which stdlib package a code snippet comes from (8 classes)",
            targets=("test/accuracy >= 0.88",),  # the majority class's is 0.13
        ),
        Recipe(
            "qa-synthetic",
            "engine_nlp:recipes/qa-synthetic.yaml",
            "Extractive QA on generated paragraphs about people: SQuAD exact match and F1",
            # the name-blind baseline (test/blind_exact_match) is ~0.65; seed 0 scored 0.964 (docs/plugins/nlp.md)
            targets=("test/f1 >= 0.85", "test/exact_match >= 1.3 * test/blind_exact_match"),
        ),
        Recipe(
            "instruct-lora",
            "engine_nlp:recipes/instruct-lora.yaml",
            "LoRA fine-tuning of a pre-trained char GPT (model.init_from) on generated instructions; exact match",
            required=("model.init_from",),
        ),
        Recipe(
            "instruct-smollm2",
            "engine_nlp:recipes/instruct-smollm2.yaml",
            "LoRA fine-tuning of SmolLM2-135M-Instruct (hf.causal_lm, needs the hf plugin) on generated instructions",
            required=("model.path",),
        ),
        Recipe(
            "translate-synthetic",
            "engine_nlp:recipes/translate-synthetic.yaml",
            "Encoder-decoder transformer on a generated language pair (reordering, agreement): minutes on 2 cores",
            targets=("test/bleu >= 90", "test/chrf >= 1.5 * test/dict_chrf"),  # dictionary: BLEU ~3, chrF ~47
        ),
        Recipe(
            "translate-tsv",
            "engine_nlp:recipes/translate-tsv.yaml",
            "Translate your sentence pairs: a TSV (Tatoeba's export: source, target, ...) or CSV/JSONL; set data.path",
            required=("data.path",),
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    # `engine generate` is engine-deploy's (any task implementing engine.protocols.Generates, issue 35)
    nlp = subparsers.add_parser(
        "nlp", help="nlp plugin tools: compare a run with its baseline", description="Tools of the nlp plugin."
    )
    nsub = nlp.add_subparsers(dest="nlp_command", metavar="SUBCOMMAND")
    b = nsub.add_parser(
        "baselines",
        help="a run's metrics next to its baseline: bigram LM, majority class, copy or dictionary translation",
        description="Rebuild the run's data (same split, same tokenizer) and print its val/test metrics next to "
        "the baseline: a smoothed bigram model's loss for language models (best of a few smoothings), "
        "the majority-class accuracy for classifiers, BLEU/chrF of copying the source and of a word-by-word "
        "dictionary learnt from the training pairs for translation.",
        epilog="example:\n  engine nlp baselines runs/char-gpt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("run", help="a run directory of an nlp data source")
    b.set_defaults(handler="engine_nlp.cli:baselines")
    pp = nsub.add_parser(
        "perplexity",
        help="a language model run's loss, bits/token and perplexity on any text file",
        description="Encode FILE with the run's tokenizer and score it with the run's model in windows of its "
        "context: loss (nats/token), bits/token and perplexity. --stride below the context overlaps the windows "
        "(each token scored once, with more history).",
        epilog="example:\n  engine nlp perplexity runs/char-gpt notes.txt --stride 64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pp.add_argument("run", help="a run directory of a language model")
    pp.add_argument("file", help="a UTF-8 text file")
    pp.add_argument("--stride", type=int, default=None, help="tokens between window starts (default: the context)")
    pp.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default: best)")
    pp.add_argument("--json", action="store_true", help="print one JSON object")
    pp.set_defaults(handler="engine_nlp.perplexity:command")
