"""Declarations only (torch-free): a character copy/reverse source, a small TransformerDecoder model, its task."""

from __future__ import annotations

from engine import Component, hookimpl

ENGINE_API = ">=1,<2"


@hookimpl
def engine_data_sources() -> list[Component]:
    return [
        Component(
            "chars",
            "s2sdemo.impl:CharPairs",
            "Random strings over a small alphabet and their copy or reversal, padded per batch",
            facts=("vocab_size", "pad_id", "bos_id", "eos_id", "max_source_length", "problem"),
            task="s2sdemo.seq2seq",
        )
    ]


@hookimpl
def engine_models() -> list[Component]:
    return [Component("decoder", "s2sdemo.impl:TinySeq2Seq", "Transformer encoder + nn.TransformerDecoder")]


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "seq2seq",
            "s2sdemo.impl:Seq2SeqTask",
            "Teacher-forced training, greedy generation over any network callable",
            slots={"model": "model", "optimizer": "optimizer"},
            defaults={"model": "s2sdemo.decoder", "optimizer": "adamw"},
            required_slots=("model",),
        )
    ]
