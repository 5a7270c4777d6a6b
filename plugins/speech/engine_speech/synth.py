"""Real speech from Debian's ``espeak-ng``: voices, one-shot synthesis, a parallel cached generator.

A *voice* is ``language+variant`` (``en-us+f3``, ``en-gb-scotland+m2``): the language sets the accent,
the variant the speaker (formants, pitch, breathiness). Each utterance is cached as one WAV file
(22050 Hz, as espeak writes it) named by a hash of everything that shapes it (text, voice, speed,
pitch, amplitude, espeak version), so any configuration reuses what an earlier one synthesised.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine import ConfigError, EngineError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def espeak() -> str:
    """Path of the ``espeak-ng`` executable, or a clear error telling how to install it."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak-ng", path="/usr/bin:/usr/local/bin")
    if exe is None:
        raise EngineError(
            "espeak-ng is not installed (needed to synthesise spoken digits)",
            hint="install it: sudo apt-get install espeak-ng (Debian/Ubuntu), brew install espeak-ng (macOS)",
        )
    return exe


@lru_cache(maxsize=1)
def espeak_version() -> str:
    out = subprocess.run([espeak(), "--version"], capture_output=True, text=True, check=False).stdout
    return out.split("Data at")[0].strip() or "unknown"


@lru_cache(maxsize=1)
def available_voices() -> tuple[frozenset[str], frozenset[str]]:
    """(languages, variants) espeak-ng knows: ``--voices`` and ``--voices=variant``."""
    exe = espeak()
    langs = subprocess.run([exe, "--voices"], capture_output=True, text=True, check=False).stdout
    variants = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, check=False).stdout
    languages = set()
    for line in langs.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 1:
            languages.add(parts[1])
            languages.update(p[1:] for p in parts[5:] if p.startswith("("))  # aliases: "(en 2)"
    # the File column may hold spaces ("!v/Mr serious"): it ends at two spaces (before "Other Languages") or the line
    names = {m.group(1) for m in re.finditer(r"!v/(.+?)(?: {2,}|$)", variants, flags=re.MULTILINE)}
    return frozenset(languages), frozenset(names)


def check_voices(voices: Sequence[str], where: str) -> None:
    """Every ``language[+variant]`` exists (espeak silently falls back to its default voice otherwise)."""
    languages, variants = available_voices()
    for voice in voices:
        lang, _, variant = voice.partition("+")
        if lang not in languages:
            close = sorted(x for x in languages if x.split("-")[0] == lang.split("-")[0])[:8]
            raise ConfigError(
                f"{where}: espeak-ng has no language '{lang}' (in voice '{voice}')",
                hint=f"e.g. {', '.join(close) or 'en-us, en'}; list them with `espeak-ng --voices=en`",
            )
        if variant and variant not in variants:
            close = sorted(v for v in variants if v.lower().startswith(variant[:1].lower()))[:8]
            raise ConfigError(
                f"{where}: espeak-ng has no variant '{variant}' (in voice '{voice}'); names are case-sensitive",
                hint=f"e.g. {', '.join(close) or 'm1, f3'}; list them with `espeak-ng --voices=variant`",
            )


PROBE = " ".join(DIGIT_WORDS)  # the text voices are told apart by


def check_distinct_voices(splits: dict[str, list[str]], cache_dir: str | os.PathLike[str], where: str) -> None:
    """Voices are told apart by the audio they produce, as espeak-ng falls back silently.

    A variant espeak ignores (``en-gb+m3``, ``en+fast``: the audio of the language alone), two voices of a split
    with the same audio, or a voice of another split that sounds exactly like a training voice is refused: the
    splits would not hold the speakers their names promise. Fingerprints are cached WAVs of ``PROBE``.
    """
    voices = sorted(
        {v for vs in splits.values() for v in vs} | {v.partition("+")[0] for vs in splits.values() for v in vs}
    )
    paths = generate([Utterance(PROBE, v) for v in voices], cache_dir, label="voice check")
    sound = {v: hashlib.sha1(p.read_bytes()[44:]).hexdigest() for v, p in zip(voices, paths, strict=True)}
    heard: dict[str, tuple[str, str]] = {}  # audio -> (split, voice)
    for split in sorted(splits, key=lambda s: s != "train"):  # training voices first
        for voice in splits[split]:
            lang, _, variant = voice.partition("+")
            if variant and sound[voice] == sound[lang]:
                raise ConfigError(
                    f"{where}: espeak-ng ignores variant '{variant}' in voice '{voice}' (its audio is '{lang}' alone)",
                    hint="drop that language/variant pair; `espeak-ng --voices=variant` lists the variant files",
                )
            first = heard.setdefault(sound[voice], (split, voice))
            if first != (split, voice):
                raise ConfigError(
                    f"{where}: voice '{voice}' ({split}) sounds exactly like '{first[1]}' ({first[0]}) in espeak-ng",
                    hint="keep voices that produce different audio: a held-out voice must not be heard in training",
                )


@dataclass(frozen=True)
class Utterance:
    """One thing to say: text, voice, speed (words per minute), pitch (0-99), amplitude (0-200)."""

    text: str
    voice: str
    speed: int = 160
    pitch: int = 50
    amplitude: int = 100

    def key(self) -> str:
        loud = "" if self.amplitude == 100 else f"|a{self.amplitude}"  # keys of earlier caches stay valid
        raw = f"{espeak_version()}|{self.voice}|{self.speed}|{self.pitch}{loud}|{self.text}"
        return hashlib.sha1(raw.encode()).hexdigest()[:20]


def synthesize(utt: Utterance, out: str | os.PathLike[str]) -> Path:
    """Write ``utt`` as a WAV file (22050 Hz mono, 16 bit) to ``out``; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    cmd = [
        espeak(),
        "-v",
        utt.voice,
        "-s",
        str(utt.speed),
        "-p",
        str(utt.pitch),
        "-a",
        str(utt.amplitude),
        "-w",
        str(tmp),
        utt.text,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"espeak-ng failed for {utt}: {proc.stderr.strip() or 'no audio written'}")
    os.replace(tmp, out)
    return out


def generate(
    utterances: Sequence[Utterance], cache_dir: str | os.PathLike[str], workers: int = 2, label: str = "speech"
) -> list[Path]:
    """The cached WAV of every utterance, synthesising the missing ones in ``workers`` parallel processes.

    Progress goes to stderr, one line per tenth of the work.
    """
    root = Path(cache_dir).expanduser() / "espeak"
    paths = [root / u.key()[:2] / f"{u.key()}.wav" for u in utterances]
    todo = [(u, p) for u, p in zip(utterances, paths, strict=True) if not p.is_file()]
    if todo:
        espeak()
        started = time.time()
        step = max(1, len(todo) // 10)
        print(f"[{label}] synthesising {len(todo)} utterances with espeak-ng into {root} ...", file=sys.stderr)
        # Threads are enough: each job is an espeak-ng process, so they run in parallel.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, _ in enumerate(pool.map(lambda up: synthesize(*up), todo), 1):
                if done % step == 0 or done == len(todo):
                    print(f"[{label}] {done}/{len(todo)} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    return paths
