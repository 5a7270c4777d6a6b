"""The speech plugin: declarations only (no torch, numpy or soundfile imported here)."""

from __future__ import annotations

import argparse
from typing import Any

from engine import CommandSink, Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"

_FEATURES = ("n_mels", "sample_rate", "features", "clip_seconds")
_CLIP_FACTS = ("problem", "num_classes", "out_features", "class_names", "input_shape", *_FEATURES)
_ASR_FACTS = ("problem", "vocabulary", "vocab_size", *_FEATURES)


@hookimpl
def engine_data_sources() -> list[Component]:
    return [
        # spoken_digits first: the conformance kit builds every model from the first source's facts.
        Component(
            "spoken_digits",
            "engine_speech.digits:SpokenDigits",
            "Digits spoken by espeak-ng voices (words for KWS, digit strings for ASR), test voices held out",
            facts=(*_CLIP_FACTS, "vocabulary", "vocab_size", "lexicon"),
            check="engine_speech.checks:spoken_digits",  # the task fits the mode (--dry-run too)
        ),
        Component(
            "wav_folder",
            "engine_speech.files:WavFolder",
            "Keyword clips from class subfolders of WAV/FLAC files",
            facts=_CLIP_FACTS,
        ),
        Component(
            "transcribed",
            "engine_speech.files:Transcribed",
            "Utterances and transcripts from a CSV/JSONL manifest (character vocabulary)",
            facts=_ASR_FACTS,
            task="speech.ctc",
            check="engine_speech.checks:transcribed",  # not the supervised task
        ),
    ]


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_speech.models"
    return [
        Component("kws_cnn", f"{m}:KWSCNN", "Keyword-spotting CNN on log-mel clips"),
        Component("ctc_asr", f"{m}:CTCASR", "Conv front-end + BiGRU/transformer encoder + CTC head over characters"),
    ]


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "ctc",
            "engine_speech.task:CTCTask",
            "Speech recognition: CTC loss, greedy/beam/lexicon+n-gram decoding, WER and CER (torchmetrics)",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"model": "speech.ctc_asr", "optimizer": "adamw", "scheduler": None},
            required_slots=("model",),
        )
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "digits-kws",
            "engine_speech:recipes/digits-kws.yaml",
            "Keyword spotting of spoken digits (10 classes): >= 97 % accuracy on held-out accents and speakers",
            targets=("heldout/accuracy >= 0.97", "test/accuracy >= 0.97"),
        ),
        Recipe(
            "digits-asr",
            "engine_speech:recipes/digits-asr.yaml",
            "CTC recognition of 3-6 spoken digits, lexicon decoding: WER <= 5 % on held-out accents and speakers",
            targets=("heldout/wer <= 0.05", "test/wer <= 0.05"),
        ),
    ]


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    """Evaluate spoken digits' held-out accent/variant split beside the test split (``heldout/...``)."""
    data = config.get("data") or {}
    if data.get("name") != "speech.spoken_digits" or data.get("num_heldout_utterances", 500) == 0:
        return []
    from engine_speech.heldout import HeldoutTest

    return [HeldoutTest()]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with a trained speech run (speech plugin)",
        description="Print what run RUN hears in each audio file: the transcript for a speech recognition "
        "run (task speech.ctc), the predicted word and its probability for a keyword-spotting run. Files of "
        "any sample rate and channel count are resampled to the run's rate and downmixed to mono.",
        epilog="example:\n  espeak-ng -v en-us+f5 -w /tmp/d.wav 'four two seven'\n"
        "  engine transcribe runs/digits-asr /tmp/d.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="a run directory of a speech run (e.g. from `engine run speech/digits-asr`)")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which weights (default: best)")
    p.add_argument(
        "--decoder",
        default=None,
        metavar="greedy|beam|lexicon",
        help="CTC decoding: greedy, beam (prefix beam search) or lexicon (words of the run's lexicon + word "
        "n-gram); default: the run's task.decoder",
    )
    p.add_argument("--beam-width", type=int, default=None, help="beam width (default: the run's task.beam_width)")
    p.set_defaults(handler="engine_speech.cli:transcribe")
