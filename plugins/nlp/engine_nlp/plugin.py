"""The nlp plugin: declarations only (no torch, tokenizers or numpy imported here)."""

from __future__ import annotations

import argparse

from engine import CommandSink, Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"

_CLS_FACTS = ("problem", "num_classes", "class_names", "vocab_size", "context_length", "pad_id")
_LM_FACTS = ("vocab_size", "context_length", "pad_id")
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
    ]


@hookimpl
def engine_optimizers() -> list[Component]:
    return [
        Component(
            "gpt_adamw", "engine_nlp.optim:gpt_adamw", "AdamW, decay on matrices only, fused kernel (transformers)"
        )
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "char-gpt",
            "engine_nlp:recipes/char-gpt.yaml",
            "Character-level GPT on the Python stdlib sources: a few minutes of CPU, far below a bigram",
            targets=("test/loss <= 1.7",),  # nats/character; the best add-alpha bigram's is 2.44
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
            targets=("test/f1 >= 0.35",),  # measured, not yet good: see docs/plugins/nlp.md (the name-blind baseline)
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a trained language model run (nlp plugin)",
        description="Continue --prompt with text sampled from the GPT of run RUN (its best checkpoint), using "
        "the tokenizer.json saved in the run. Temperature 0 is greedy decoding.",
        epilog="example:\n  engine generate runs/char-gpt --prompt 'def ' --max-new-tokens 300 --temperature 0.8 "
        "--top-k 40 --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="a run directory of a language model (e.g. from `engine run nlp/char-gpt`)")
    p.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to sample (default: 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest tokens; 0 = all (default: 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sampling (default: 0)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default: best)")
    p.set_defaults(handler="engine_nlp.cli:generate")

    nlp = subparsers.add_parser(
        "nlp", help="nlp plugin tools: compare a run with its baseline", description="Tools of the nlp plugin."
    )
    nsub = nlp.add_subparsers(dest="nlp_command", metavar="SUBCOMMAND")
    b = nsub.add_parser(
        "baselines",
        help="a run's metrics next to a bigram LM (language models) or the majority class (classifiers)",
        description="Rebuild the run's data (same split, same tokenizer) and print its val/test metrics next to "
        "the baseline: a smoothed bigram model's loss for language models (best of a few smoothings), "
        "the majority-class accuracy for classifiers.",
        epilog="example:\n  engine nlp baselines runs/char-gpt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("run", help="a run directory of an nlp data source")
    b.set_defaults(handler="engine_nlp.cli:baselines")
