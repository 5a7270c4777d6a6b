"""Real speech from Debian's ``espeak-ng`` and ``festival``: voices, one-shot synthesis, a parallel cached generator.

An espeak-ng *voice* is ``language+variant`` (``en-us+f3``, ``en-gb-scotland+m2``): the language sets the accent,
the variant the speaker (formants, pitch, breathiness). espeak-ng is a formant synthesiser: every sound is made by
rule. A festival voice (``ked_diphone``, Debian's ``festvox-kdlpc16k``) joins recorded diphones of a real speaker,
so its consonants are a person's: a second, unlike source of training speech. Each utterance is cached as one
WAV file named by a hash of everything that shapes it (synthesiser and its version, text, voice, speed, pitch,
amplitude), so any configuration reuses what an earlier one synthesised.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Literal

from engine import ConfigError, EngineError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _executable(name: str, needed_for: str, hint: str) -> str:
    """Path of a synthesiser's executable, or a clear error telling how to install it."""
    exe = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
    if exe is None:
        raise EngineError(f"{name} is not installed (needed {needed_for})", hint=hint)
    return exe


def espeak() -> str:
    """Path of the ``espeak-ng`` executable."""
    hint = "install it: sudo apt-get install espeak-ng (Debian/Ubuntu), brew install espeak-ng (macOS)"
    return _executable("espeak-ng", "to synthesise spoken digits", hint)


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


def festival() -> str:
    """Path of the ``festival`` executable."""
    hint = "`make setup` installs it as root, else: sudo apt-get install festival festvox-kdlpc16k"
    return _executable("festival", "for festival_voices", hint)


@lru_cache(maxsize=1)
def festival_info() -> tuple[str, frozenset[str]]:
    """(festival's version, the voices it has): ``festival --version`` and ``(voice.list)``."""
    exe = festival()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    voices = subprocess.run([exe, "-b", "(print (voice.list))"], capture_output=True, text=True, check=False).stdout
    return version or "unknown", frozenset(voices.strip().strip("()").split())


def check_festival_voices(voices: Sequence[str], where: str) -> None:
    """Every festival voice exists (festival writes no audio for an unknown one and still exits 0)."""
    known = festival_info()[1]
    for voice in voices:
        if voice not in known:
            raise ConfigError(
                f"{where}: festival has no voice '{voice}'",
                hint=f"festival has: {', '.join(sorted(known)) or 'none'}; Debian's festvox-* packages add voices",
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
    """One thing to say: text, voice, speed (words per minute), pitch (0-99), amplitude (0-200), synthesiser.

    espeak-ng takes speed, pitch and amplitude as they are. For festival they become a duration stretch
    (``FESTIVAL_WPM / speed``), a mean F0 of ``70 + 1.6 * pitch`` Hz (70-228) and a scale of ``amplitude / 100``.
    """

    text: str
    voice: str
    speed: int = 160
    pitch: int = 50
    amplitude: int = 100
    synthesiser: Literal["espeak-ng", "festival"] = "espeak-ng"

    def key(self) -> str:
        loud = "" if self.amplitude == 100 else f"|a{self.amplitude}"  # keys of earlier caches stay valid
        version = espeak_version() if self.synthesiser == "espeak-ng" else f"festival|{festival_info()[0]}"
        raw = f"{version}|{self.voice}|{self.speed}|{self.pitch}{loud}|{self.text}"
        return hashlib.sha1(raw.encode()).hexdigest()[:20]


FESTIVAL_WPM = 170  # the speaking rate festival's duration stretch 1 is taken for
FESTIVAL_MODEL_F0 = "(model_f0_mean 170) (model_f0_std 34)"  # the diphone voices' intonation model (their own)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_batch(items: Sequence[tuple[Utterance, Path]]) -> int:
    """Synthesise festival utterances in one ``festival --pipe`` process (a few ms each, where a process per
    utterance takes 250 ms); returns how many. Texts and paths go in as quoted Scheme strings, voice names are
    checked: what is said is never run.
    """
    lines, voice, tmps = [], None, []
    for utt, out in items:
        if not re.fullmatch(r"[A-Za-z0-9_]+", utt.voice):
            raise EngineError(f"festival voice names are letters, digits and _, got '{utt.voice}'")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmps.append(tmp)
        if utt.voice != voice:
            lines.append(f"(voice_{utt.voice})")
            voice = utt.voice
        f0 = 70 + 1.6 * utt.pitch
        lines += [
            f"(Parameter.set 'Duration_Stretch {FESTIVAL_WPM / utt.speed:.4f})",
            f"(set! int_lr_params '((target_f0_mean {f0:.1f}) (target_f0_std 15) {FESTIVAL_MODEL_F0}))",
            f"(set! utt (utt.synth (Utterance Text {_scheme_string(utt.text)})))",
            f"(utt.wave.rescale utt {utt.amplitude / 100:g})",
            f"(utt.save.wave utt {_scheme_string(str(tmp))} 'riff)",
        ]
    proc = subprocess.run([festival(), "--pipe"], input="\n".join(lines), capture_output=True, text=True, check=False)
    failed = [utt for (utt, _), tmp in zip(items, tmps, strict=True) if not tmp.is_file() or tmp.stat().st_size <= 44]
    if proc.returncode != 0 or failed:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        why = (proc.stderr.strip() or "no audio written").splitlines()[0]
        raise EngineError(f"festival failed for {failed[0] if failed else items[0][0]}: {why}")
    for (_, out), tmp in zip(items, tmps, strict=True):
        os.replace(tmp, out)
    return len(items)


def synthesize(utt: Utterance, out: str | os.PathLike[str]) -> Path:
    """Write ``utt`` as a WAV file (mono, 16 bit; 22050 Hz from espeak-ng, the voice's rate from festival)."""
    out = Path(out)
    if utt.synthesiser == "festival":
        festival_batch([(utt, out)])
        return out
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


def _one(utt: Utterance, out: Path) -> int:
    synthesize(utt, out)
    return 1


def generate(
    utterances: Sequence[Utterance], cache_dir: str | os.PathLike[str], workers: int = 2, label: str = "speech"
) -> list[Path]:
    """The cached WAV of every utterance, synthesising the missing ones in ``workers`` parallel processes.

    Progress goes to stderr, one line per tenth of the work.
    """
    root = Path(cache_dir).expanduser() / "espeak"
    paths = [root / u.key()[:2] / f"{u.key()}.wav" for u in utterances]
    todo = list({p: (u, p) for u, p in zip(utterances, paths, strict=True) if not p.is_file()}.values())  # once each
    if todo:
        used = sorted({u.synthesiser for u, _ in todo})
        for name in used:
            {"espeak-ng": espeak, "festival": festival}[name]()
        started = time.time()
        step = max(1, len(todo) // 10)
        print(
            f"[{label}] synthesising {len(todo)} utterances with {' and '.join(used)} into {root} ...", file=sys.stderr
        )
        # A job is one espeak-ng utterance or a chunk of festival ones: one synthesiser process each, so threads
        # are enough to run them in parallel.
        spoken = [(u, p) for u, p in todo if u.synthesiser == "festival"]
        chunk = max(1, min(100, -(-len(spoken) // max(1, workers))))
        jobs = [partial(festival_batch, spoken[i : i + chunk]) for i in range(0, len(spoken), chunk)]
        jobs += [partial(_one, u, p) for u, p in todo if u.synthesiser != "festival"]
        done, shown = 0, 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for n in pool.map(lambda job: job(), jobs):
                done += n
                if done - shown >= step or done == len(todo):
                    shown = done
                    print(f"[{label}] {done}/{len(todo)} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    return paths
