"""Sources of your own audio files: ``speech.wav_folder`` (class subfolders), ``speech.transcribed`` (a manifest)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt, Le, Lt
from torch.utils.data import Dataset

from engine import ConfigError, EngineError
from engine.data import split_indices
from engine_speech.audio import AUDIO_SUFFIXES, load_audio
from engine_speech.datasets import collate_sequences
from engine_speech.source import SpeechSource, feature_params
from engine_speech.text import encode_text, normalize_text


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _load_all(paths: Sequence[Path], sample_rate: int, on_error: str) -> tuple[list[torch.Tensor], list[int]]:
    """Waveforms of ``paths`` and the indices kept (bad files raise, or are skipped with a warning)."""
    import warnings

    waves, kept = [], []
    for i, p in enumerate(paths):
        try:
            waves.append(load_audio(p, sample_rate))
            kept.append(i)
        except EngineError as exc:
            if on_error == "raise":
                raise EngineError(exc.message, hint="fix or remove it, or set data.on_error=skip") from None
            warnings.warn(f"skipping {p}: {exc.message}", stacklevel=2)
    return waves, kept


class WavFolder(SpeechSource):
    """Keyword spotting from a folder of class subfolders of audio files (``root/yes/*.wav``, ``root/no/*.flac``).

    Files of any rate and channel count are read (resampled, downmixed), trimmed of silence and
    padded/cropped to ``clip_seconds``; the split is random and stratified by class.

    Args:
        path: the folder; each subfolder is a class, named after it.
        clip_seconds: clip length; longer utterances are cropped around their middle.
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for the final test.
        seed: seed of the split.
        on_error: raise on an unreadable or empty file, or skip it with a warning.
        sample_rate: audio is resampled to this rate (Hz) before features.
        n_mels: mel filters of the log-mel features.
        win_ms: STFT window (Hann), milliseconds.
        hop_ms: STFT hop (frame shift), milliseconds.
        n_mfcc: 0 for log-mel features, else keep this many MFCCs (DCT of the log-mel).
        augment: augment the training split (tempo, vocal-tract length, reverb, noise, time shift, SpecAugment).
        tempo_range: [low, high] speed-perturbation factor (resampling: tempo and pitch together); [1, 1] is off.
        vtlp_range: [low, high] vocal-tract-length warp of the frequency axis; [1, 1] is off.
        reverb_prob: probability of a synthetic room (exponentially decaying noise impulse response).
        rt60_range: [low, high] reverberation time of that room, seconds.
        noise_prob: probability of adding white or pink noise to a training utterance.
        snr_db: [low, high] signal-to-noise ratio range of that noise, dB.
        freq_masks: SpecAugment frequency masks per training utterance.
        freq_mask_width: widest frequency mask (mel bands).
        time_masks: SpecAugment time masks per training utterance.
        time_mask_width: widest time mask (frames; at most 20 % of the utterance).
    """

    def __init__(
        self,
        path: Annotated[str, "existing_path"],
        clip_seconds: Annotated[float, Gt(0)] = 1.0,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        on_error: Literal["raise", "skip"] = "raise",
        sample_rate: Annotated[int, Ge(1)] = 16000,
        n_mels: Annotated[int, Ge(1)] = 40,
        win_ms: Annotated[float, Gt(0)] = 25.0,
        hop_ms: Annotated[float, Gt(0)] = 10.0,
        n_mfcc: Annotated[int, Ge(0)] = 0,
        augment: bool = True,
        tempo_range: list[float] = [0.85, 1.15],  # noqa: B006
        vtlp_range: list[float] = [0.9, 1.1],  # noqa: B006
        reverb_prob: Annotated[float, Ge(0), Le(1)] = 0.3,
        rt60_range: list[float] = [0.1, 0.6],  # noqa: B006
        noise_prob: Annotated[float, Ge(0), Le(1)] = 0.5,
        snr_db: list[float] = [5.0, 30.0],  # noqa: B006
        freq_masks: Annotated[int, Ge(0)] = 2,
        freq_mask_width: Annotated[int, Ge(0)] = 6,
        time_masks: Annotated[int, Ge(0)] = 2,
        time_mask_width: Annotated[int, Ge(0)] = 8,
    ) -> None:
        self._setup(feature_params(locals()))
        root = Path(path).expanduser()
        if not root.is_dir():
            raise ConfigError(f"audio folder not found: {root}", hint="set data.path to a folder of class subfolders")
        if clip_seconds <= 0:
            raise ConfigError(f"clip_seconds must be positive, got {clip_seconds}")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and _audio_files(d))
        if len(classes) < 2:
            raise ConfigError(
                f"{root} needs at least two class subfolders holding audio files ({', '.join(AUDIO_SUFFIXES)}); "
                f"found {len(classes)}",
                hint="lay it out as root/<class>/<file>.wav",
            )
        self.root, self.class_names = root, classes
        self.files = [(f, c) for c, name in enumerate(classes) for f in _audio_files(root / name)]
        self.clip_seconds, self.clip_samples = clip_seconds, round(clip_seconds * sample_rate)
        self.val_fraction, self.test_fraction, self.seed, self.on_error = val_fraction, test_fraction, seed, on_error
        split_indices(2, val_fraction, test_fraction, seed)  # validates the fractions now

    @property
    def facts(self) -> dict[str, Any]:
        return self._clip_facts(self.class_names)

    def _build(self) -> dict[str, Dataset]:
        waves, kept = _load_all([f for f, _ in self.files], self.sample_rate, self.on_error)
        labels = [self.files[i][1] for i in kept]
        idx = split_indices(len(waves), self.val_fraction, self.test_fraction, self.seed, stratify=labels)
        return {
            split: self._clip_dataset(
                [waves[i] for i in ix.tolist()], [labels[i] for i in ix.tolist()], split == "train"
            )
            for split, ix in idx.items()
        }


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{path}, line {n}: not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}, line {n}: expected a JSON object per line")
            rows.append({**row, "_line": n})
        return rows
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [{**row, "_line": n} for n, row in enumerate(csv.DictReader(fh), 2)]


class Transcribed(SpeechSource):
    """Speech recognition from a manifest (CSV with a header, or JSONL) of audio paths and transcripts.

    Relative paths are relative to the manifest's folder. Transcripts are lower-cased and their
    whitespace collapsed; the character vocabulary is ``vocabulary`` when given (a transcript
    with another character is an error naming its line), else every character of the manifest.
    A ``split`` column (train/val/test) fixes the split; otherwise it is random.

    Args:
        manifest: the CSV or JSONL file.
        path_column: column (key) holding the audio path.
        text_column: column (key) holding the transcript.
        split_column: optional column (key) holding train/val/test.
        vocabulary: the characters the model may output, as one string (default: those of the manifest).
        val_fraction: fraction held out for validation (without a split column).
        test_fraction: fraction held out for the final test (without a split column).
        seed: seed of the split.
        on_error: raise on an unreadable or empty audio file, or skip it with a warning.
        sample_rate: audio is resampled to this rate (Hz) before features.
        n_mels: mel filters of the log-mel features.
        win_ms: STFT window (Hann), milliseconds.
        hop_ms: STFT hop (frame shift), milliseconds.
        n_mfcc: 0 for log-mel features, else keep this many MFCCs (DCT of the log-mel).
        augment: augment the training split (tempo, vocal-tract length, reverb, noise, time shift, SpecAugment).
        tempo_range: [low, high] speed-perturbation factor (resampling: tempo and pitch together); [1, 1] is off.
        vtlp_range: [low, high] vocal-tract-length warp of the frequency axis; [1, 1] is off.
        reverb_prob: probability of a synthetic room (exponentially decaying noise impulse response).
        rt60_range: [low, high] reverberation time of that room, seconds.
        noise_prob: probability of adding white or pink noise to a training utterance.
        snr_db: [low, high] signal-to-noise ratio range of that noise, dB.
        freq_masks: SpecAugment frequency masks per training utterance.
        freq_mask_width: widest frequency mask (mel bands).
        time_masks: SpecAugment time masks per training utterance.
        time_mask_width: widest time mask (frames; at most 20 % of the utterance).
    """

    def __init__(
        self,
        manifest: str,
        path_column: str = "path",
        text_column: str = "transcript",
        split_column: str = "split",
        vocabulary: str | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        on_error: Literal["raise", "skip"] = "raise",
        sample_rate: Annotated[int, Ge(1)] = 16000,
        n_mels: Annotated[int, Ge(1)] = 40,
        win_ms: Annotated[float, Gt(0)] = 25.0,
        hop_ms: Annotated[float, Gt(0)] = 10.0,
        n_mfcc: Annotated[int, Ge(0)] = 0,
        augment: bool = True,
        tempo_range: list[float] = [0.85, 1.15],  # noqa: B006
        vtlp_range: list[float] = [0.9, 1.1],  # noqa: B006
        reverb_prob: Annotated[float, Ge(0), Le(1)] = 0.3,
        rt60_range: list[float] = [0.1, 0.6],  # noqa: B006
        noise_prob: Annotated[float, Ge(0), Le(1)] = 0.5,
        snr_db: list[float] = [5.0, 30.0],  # noqa: B006
        freq_masks: Annotated[int, Ge(0)] = 2,
        freq_mask_width: Annotated[int, Ge(0)] = 6,
        time_masks: Annotated[int, Ge(0)] = 2,
        time_mask_width: Annotated[int, Ge(0)] = 8,
    ) -> None:
        self._setup(feature_params(locals()))
        file = Path(manifest).expanduser()
        if not file.is_file():
            raise ConfigError(f"manifest not found: {file}", hint="set data.manifest to a CSV or JSONL file")
        rows = _read_manifest(file)
        if not rows:
            raise ConfigError(f"{file}: no rows")
        for col in (path_column, text_column):
            if col not in rows[0]:
                keys = ", ".join(k for k in rows[0] if k != "_line")
                raise ConfigError(
                    f"{file}: no column '{col}'; columns are {keys}",
                    hint="set data.path_column / data.text_column",
                )
        self.rows = []
        for row in rows:
            audio = Path(str(row.get(path_column) or "")).expanduser()
            if not str(row.get(path_column) or "").strip():
                raise ConfigError(f"{file}, line {row['_line']}: empty '{path_column}'")
            audio = audio if audio.is_absolute() else file.parent / audio
            text = normalize_text(row.get(text_column) or "")
            if not text:
                raise ConfigError(f"{file}, line {row['_line']}: empty transcript")
            split = str(row.get(split_column) or "").strip().lower() or None
            if split is not None and split not in ("train", "val", "test"):
                raise ConfigError(f"{file}, line {row['_line']}: split '{split}' is not train, val or test")
            self.rows.append((audio, text, split, row["_line"]))
        self.vocabulary = sorted(set(vocabulary)) if vocabulary else sorted({c for _, t, _, _ in self.rows for c in t})
        for _, text, _, line in self.rows:
            encode_text(text, self.vocabulary, where=f"{file}, line {line}")
        self.file, self.val_fraction, self.test_fraction, self.seed = file, val_fraction, test_fraction, seed
        self.on_error = on_error
        split_indices(2, val_fraction, test_fraction, seed)

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "problem": "transcription",
            "vocabulary": list(self.vocabulary),
            "vocab_size": len(self.vocabulary) + 1,
            "clip_seconds": None,
            **self._feature_facts(),
        }

    collate_fn = staticmethod(collate_sequences)

    def _build(self) -> dict[str, Dataset]:
        waves, kept = _load_all([a for a, _, _, _ in self.rows], self.sample_rate, self.on_error)
        rows = [self.rows[i] for i in kept]
        if any(split is not None for _, _, split, _ in rows):
            groups = {s: [i for i, r in enumerate(rows) if (r[2] or "train") == s] for s in ("train", "val", "test")}
        else:
            idx = split_indices(len(rows), self.val_fraction, self.test_fraction, self.seed)
            groups = {k: v.tolist() for k, v in idx.items()}
        if not groups.get("train"):
            raise ConfigError(f"{self.file}: no training rows")
        return {
            split: self._sequence_dataset(
                [waves[i] for i in ix], [encode_text(rows[i][1], self.vocabulary) for i in ix], split == "train"
            )
            for split, ix in groups.items()
            if ix
        }
