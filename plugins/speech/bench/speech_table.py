"""Run the speech recipes over seeds x torch threads and print their test and held-out figures.

    .venv/bin/python plugins/speech/bench/speech_table.py [--recipes speech/digits-kws speech/digits-asr]
        [--seeds 0 1 2] [--threads 1 2] [--jobs 1] [--keep DIR] [--runs RUN ...] [--fresh 6] [k=v ...]

Each (recipe, seed, threads) is one ``engine run RECIPE seed=S`` in a fresh process with
``OMP_NUM_THREADS=T`` (how a user sets torch's thread count), ``--jobs`` of them at a time. One row per
run: test figures on the standard test voices (variants never heard in training) and on the held-out
split (accents *and* variants never heard, speeds and pitches outside the training ranges): accuracy
for keyword spotting; WER with the run's decoder (lexicon + word bigram in the recipe) and greedy
for recognition. Then the worst of the matrix per recipe, and ``engine transcribe`` (greedy and
lexicon) of the first ASR run on freshly synthesised digit strings in held-out voices.
``--runs`` tabulates finished run directories instead (threads read from a ``-tN`` name suffix).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGETS = {"speech/digits-kws": ("heldout/accuracy", ">=", 0.97), "speech/digits-asr": ("heldout/wer", "<=", 0.05)}
ENGINE = str(Path(sys.executable).with_name("engine"))


def train(recipe: str, seed: int, threads: int, out_dir: Path, overrides: list[str]) -> Path:
    name = f"{recipe.split('/')[-1]}-s{seed}-t{threads}"
    cmd = [ENGINE, "run", recipe, f"seed={seed}", f"run.dir={out_dir}", f"run.name={name}"]
    cmd += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", *overrides]
    # PASSIVE: idle OpenMP threads sleep instead of spinning. The same threads split the same work, so the
    # figures are those of the default policy; on a shared CPU a spinning 2-thread run is many times slower.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    log = out_dir / f"{name}.log"
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        print(f"{name} failed (exit {proc.returncode}), see {log}", file=sys.stderr)
    return out_dir / name


def row(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    recipe = "speech/digits-kws" if "mode: words" in config else "speech/digits-asr"
    threads = re.search(r"-t(\d+)$", run_dir.name)
    return {
        "recipe": recipe,
        "seed": summary.get("seed"),
        "threads": int(threads.group(1)) if threads else None,
        "m": summary.get("metrics", {}),
        "epochs": summary.get("epochs"),
        "wall": float(summary.get("wall_time_s", 0)),
        "path": run_dir,
    }


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def meets(recipe: str, m: dict) -> bool:
    key, op, bound = TARGETS[recipe]
    v = m.get(key)
    return v is not None and (v >= bound if op == ">=" else v <= bound)


def print_table(rows: list[dict]) -> None:
    head = (
        "| recipe            | seed | threads | test acc | heldout acc | test WER | test WER greedy "
        "| heldout WER | heldout WER greedy | heldout exact | epochs | wall (s) | target |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        m = r["m"]
        print(
            f"| {r['recipe']:<17} | {r['seed']!s:<4} | {r['threads']!s:<7} | {fmt(m.get('test/accuracy')):<8} "
            f"| {fmt(m.get('heldout/accuracy')):<11} | {fmt(m.get('test/wer')):<8} "
            f"| {fmt(m.get('test/wer_greedy')):<15} "
            f"| {fmt(m.get('heldout/wer')):<11} | {fmt(m.get('heldout/wer_greedy')):<18} "
            f"| {fmt(m.get('heldout/exact')):<13} | {r['epochs']!s:<6} | {r['wall']:>8.0f} "
            f"| {'met' if meets(r['recipe'], m) else 'MISSED':<6} |"
        )
    print()
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        key, op, bound = TARGETS[recipe]
        values = [r["m"].get(key) for r in rows if r["recipe"] == recipe and r["m"].get(key) is not None]
        if values:
            worst = min(values) if op == ">=" else max(values)
            print(f"{recipe}: worst {key} over {len(values)} run(s) = {worst:.4f} (target {op} {bound})")


def fresh_check(run_dir: Path, n: int) -> None:
    from engine_speech.cli import transcribe_files
    from engine_speech.synth import DIGIT_WORDS, Utterance, synthesize

    rng = random.Random(12345)
    voices = ["en-us-nyc+m8", "en-gb-x-gbcwmd+aunty", "en-us-nyc+Gene2", "en-gb-x-gbcwmd+quincy", "en-us-nyc+steph2"]
    files, said = [], []
    with tempfile.TemporaryDirectory(prefix="speech-fresh-") as fresh:
        for i in range(n):
            text = " ".join(DIGIT_WORDS[rng.randrange(10)] for _ in range(rng.randint(3, 6)))
            utt = Utterance(text, voices[i % len(voices)], rng.choice([95, 105, 250, 270]), rng.choice([5, 95]))
            files.append(str(synthesize(utt, Path(fresh) / f"{i}.wav")))
            said.append((utt, text))
        greedy = transcribe_files(str(run_dir), files, decoder="greedy")
        lexicon = transcribe_files(str(run_dir), files, decoder="lexicon")
    print(f"\nengine transcribe {run_dir.name} on fresh files (held-out voices, speeds and pitches):")
    for (utt, text), (_, g), (_, lx) in zip(said, greedy, lexicon, strict=True):
        print(f"  {utt.voice:<22} s{utt.speed} p{utt.pitch} said: {text:<32} greedy: {g:<34} lexicon: {lx}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["speech/digits-kws", "speech/digits-asr"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch threads (OMP_NUM_THREADS)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--keep", default=None, help="write the runs here instead of a temporary directory")
    parser.add_argument("--fresh", type=int, default=6, help="freshly synthesised files to transcribe (ASR)")
    parser.add_argument("--runs", nargs="+", default=None, help="tabulate these finished run directories")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides applied to every run")
    args = parser.parse_args()

    tmp = None if args.keep or args.runs else tempfile.TemporaryDirectory(prefix="speech-bench-")
    out_dir = Path(args.keep or (tmp.name if tmp else "."))
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.runs:
        dirs = [Path(r) for r in args.runs]
    else:
        matrix = [(r, s, t) for r in args.recipes for s in args.seeds for t in args.threads]
        started = time.time()
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            dirs = list(pool.map(lambda job: train(*job, out_dir, args.overrides), matrix))
        print(f"{len(matrix)} runs in {time.time() - started:.0f} s", file=sys.stderr)
    rows = [row(d) for d in dirs if (d / "summary.json").is_file()]
    print()
    print_table(rows)
    asr = [r["path"] for r in rows if r["recipe"] == "speech/digits-asr" and r["m"]]
    if asr and args.fresh > 0:
        fresh_check(asr[0], args.fresh)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
