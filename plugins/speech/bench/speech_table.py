"""Run the speech recipes and print their test figures on held-out voices.

    .venv/bin/python plugins/speech/bench/speech_table.py [--recipes speech/digits-kws speech/digits-asr]
        [--runs RUN ...] [--threads 1] [--keep DIR] [k=v ...]

For each recipe: test accuracy (keyword spotting) or WER / CER / exact-match rate (recognition,
greedy decoding) on the test split, whose voices (espeak-ng variants) are never heard in training,
plus wall time (synthesis of a missing cache included). Then ``engine transcribe`` of the ASR run
on freshly synthesised digit strings in a held-out voice, printed next to what was said.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

TARGETS = {"speech/digits-kws": "accuracy >= 0.97", "speech/digits-asr": "WER <= 0.10"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["speech/digits-kws", "speech/digits-asr"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--keep", default=None, help="write the runs here instead of a temporary directory")
    parser.add_argument("--fresh", type=int, default=5, help="freshly synthesised files to transcribe (ASR)")
    parser.add_argument(
        "--runs", nargs="+", default=None, help="tabulate these finished recipe run directories instead of training"
    )
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides applied to every recipe")
    args = parser.parse_args()

    import warnings

    import torch

    import engine
    from engine.config import compose, validate
    from engine.runner import run

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    reg = engine.get_registry()
    rows, asr_run = [], None
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="speech-bench-")
    out_dir = Path(args.keep or tmp.name)  # type: ignore[union-attr]
    for run_dir in args.runs or []:
        from engine.runs import open_run

        done = open_run(run_dir)
        m = done.summary.get("metrics", {})
        recipe = "speech/digits-kws" if done.config["data"].get("mode") == "words" else "speech/digits-asr"
        rows.append(
            (
                recipe,
                m.get("test/accuracy"),
                m.get("test/wer"),
                m.get("test/cer"),
                m.get("test/exact"),
                done.summary.get("epochs"),
                float(done.summary.get("wall_time_s", 0)),
                TARGETS.get(recipe, ""),
            )
        )
        if done.config["task"]["name"].endswith("ctc"):
            asr_run = done.path
    for recipe in [] if args.runs else args.recipes:
        overrides = [
            *args.overrides,
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"run.dir={out_dir}",
            f"run.name={recipe.replace('/', '-')}",
        ]
        cfg = validate(compose(reg, recipe, (), overrides), reg)
        started = time.time()
        result = run(cfg, reg)
        wall = time.time() - started
        m = result.summary["metrics"]
        rows.append(
            (
                recipe,
                m.get("test/accuracy"),
                m.get("test/wer"),
                m.get("test/cer"),
                m.get("test/exact"),
                result.summary.get("epochs"),
                wall,
                TARGETS.get(recipe, ""),
            )
        )
        if cfg["task"]["name"].endswith("ctc"):
            asr_run = result.run_dir

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    print()
    print(f"| {'recipe':<18} | accuracy | WER    | CER    | exact  | epochs | wall (s) | target           |")
    print(f"|{'-' * 20}|----------|--------|--------|--------|--------|----------|------------------|")
    for recipe, acc, wer, cer, exact, epochs, wall, target in rows:
        print(
            f"| {recipe:<18} | {fmt(acc):<8} | {fmt(wer):<6} | {fmt(cer):<6} | {fmt(exact):<6} | {epochs!s:<6} "
            f"| {wall:>8.0f} | {target:<16} |"
        )

    if asr_run is not None and args.fresh > 0:
        from engine_speech.cli import transcribe_files
        from engine_speech.synth import DIGIT_WORDS, Utterance, synthesize

        rng = random.Random(12345)
        voices = ["en-us+m7", "en-gb-scotland+f5", "en+Alex", "en-029+steph", "en-gb-x-rp+klatt3"]  # held out
        files, said = [], []
        with tempfile.TemporaryDirectory(prefix="speech-fresh-") as fresh:
            for i in range(args.fresh):
                text = " ".join(DIGIT_WORDS[rng.randrange(10)] for _ in range(rng.randint(3, 6)))
                voice = voices[i % len(voices)]
                files.append(str(synthesize(Utterance(text, voice, rng.randint(130, 200)), Path(fresh) / f"{i}.wav")))
                said.append((voice, text))
            heard = transcribe_files(str(asr_run), files)
        print()
        print("engine transcribe on freshly synthesised files (held-out voices):")
        for (voice, text), (_, got) in zip(said, heard, strict=True):
            print(f"  {'OK ' if got == text else 'ERR'} {voice:<20} said: {text:<36} heard: {got}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
