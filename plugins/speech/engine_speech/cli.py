"""Handler of ``engine transcribe RUN FILE...``."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import EngineError


def transcribe_files(
    run_path: str, files: list[str], which: str = "best", beam_width: int | None = None, decoder: str | None = None
) -> list[tuple[str, str]]:
    """``(file, text)`` per file: the transcript (CTC runs) or ``word (probability)`` (keyword runs)."""
    from engine.runs import open_run

    run = open_run(run_path)
    facts = run.facts
    if "features" not in facts:
        raise EngineError(
            f"run {run.path} is not a speech run (its facts have no 'features')",
            hint="train one with `engine run speech/digits-asr` or `engine run speech/digits-kws`",
        )
    if beam_width is not None and beam_width < 1:
        raise EngineError(f"--beam-width must be >= 1, got {beam_width}")
    if decoder is not None:
        from engine_speech.task import DECODERS

        if decoder not in DECODERS:
            raise EngineError(f"--decoder: unknown decoder '{decoder}'", hint=f"choose one of {', '.join(DECODERS)}")
    for f in files:
        if not Path(f).is_file():
            raise EngineError(f"audio file not found: {f}")
    import torch

    from engine_speech.audio import load_audio
    from engine_speech.datasets import prepare_input

    task = run.task(which)
    if hasattr(task, "transcribe"):
        from engine_speech.task import check_decoder

        if beam_width is not None:
            task.beam_width = beam_width
        if decoder is not None:
            check_decoder(decoder, beam_width, task.lexicon, "--decoder")  # a ConfigError: one line, exit 2
            task.decoder = decoder
    out = []
    with torch.no_grad():
        for f in files:
            x = prepare_input(load_audio(f, int(facts["sample_rate"])), facts)
            if hasattr(task, "transcribe"):
                log_probs, lengths = task.model((x[None], torch.tensor([x.shape[-1]])))
                out.append((f, task.transcribe(log_probs, lengths)[0]))
            else:
                names = facts.get("class_names")
                if not names:
                    raise EngineError(f"run {run.path} has neither a CTC task nor class names")
                probs = task.model(x[None]).softmax(-1)[0]
                k = int(probs.argmax())
                out.append((f, f"{names[k]} ({float(probs[k]):.2f})"))
    return out


def transcribe(args: argparse.Namespace) -> int:
    for f, text in transcribe_files(args.run, args.files, args.checkpoint, args.beam_width, args.decoder):
        print(f"{f}\t{text}")
    return 0
