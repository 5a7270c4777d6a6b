"""Speech data sources: class folders of audio, transcribed manifests, and espeak-ng spoken digits.

Two shapes of data come out of them:

- **clips** (keyword spotting, the core ``supervised`` task): every utterance is trimmed of
  silence and padded/cropped to ``clip_seconds``; a sample is ``(features [1, n_mels, frames], class)``
  and the ``input_shape`` fact is ``[1, n_mels, frames]``;
- **sequences** (speech recognition, the ``speech.ctc`` task): variable-length; a batch, padded by
  :func:`collate_sequences`, is ``((features [B, n_mels, T], lengths [B]), (char ids [B, L], lengths [B]))``.
  Character ids start at 1 (0 is the CTC blank); the ``vocabulary`` fact lists the characters.

Augmentation (training split only, ``augment=true``): random time shift (clips), additive white or
pink noise at a random SNR, then SpecAugment time and frequency masks on the features.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from engine.data import DataSource, split_indices
from engine.errors import ConfigError, EngineError
from engine_speech.audio import AUDIO_SUFFIXES, fit_length, load_audio, trim_silence
from engine_speech.features import FeatureExtractor, add_noise, spec_augment
from engine_speech.synth import DIGIT_WORDS, Utterance, check_voices, generate

# --------------------------------------------------------------------------- text


def normalize_text(text: str) -> str:
    """Lower-case, whitespace collapsed to single spaces, stripped."""
    return " ".join(str(text).lower().split())


def encode_text(text: str, vocabulary: Sequence[str], where: str = "transcript") -> list[int]:
    """Character ids (1-based; 0 is the CTC blank) of the normalised ``text``."""
    index = {c: i + 1 for i, c in enumerate(vocabulary)}
    text = normalize_text(text)
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise ConfigError(
            f"{where}: character(s) {''.join(unknown)!r} outside the vocabulary {''.join(vocabulary)!r}",
            hint="add them to data.vocabulary, or fix the transcript",
        )
    if not text:
        raise ConfigError(f"{where}: empty transcript")
    return [index[c] for c in text]


def decode_ids(ids: Sequence[int], vocabulary: Sequence[str]) -> str:
    return "".join(vocabulary[i - 1] for i in ids if 0 < i <= len(vocabulary))


# --------------------------------------------------------------------------- datasets


class _Augment:
    def __init__(self, params: dict[str, Any]) -> None:
        self.noise_prob = params["noise_prob"]
        self.snr_db = params["snr_db"]
        self.freq_masks, self.freq_mask_width = params["freq_masks"], params["freq_mask_width"]
        self.time_masks, self.time_mask_width = params["time_masks"], params["time_mask_width"]

    def wave(self, wave: torch.Tensor) -> torch.Tensor:
        if self.noise_prob > 0 and float(torch.rand(())) < self.noise_prob:
            lo, hi = self.snr_db
            snr = lo + (hi - lo) * float(torch.rand(()))
            wave = add_noise(wave, snr, "pink" if float(torch.rand(())) < 0.5 else "white")
        return wave

    def feats(self, feats: torch.Tensor) -> torch.Tensor:
        return spec_augment(feats, self.freq_masks, self.freq_mask_width, self.time_masks, self.time_mask_width)


def _to_int16(wave: torch.Tensor) -> torch.Tensor:
    peak = wave.abs().max().clamp_min(1e-6)
    scale = 0.95 / peak if peak > 1 else 1.0  # only rescale what would clip
    return (wave * scale * 32767).round().to(torch.int16)


class ClipDataset(Dataset):
    """Fixed-length clips: ``(features [1, n_feat, frames], class index)``."""

    def __init__(
        self,
        waves: list[torch.Tensor],
        labels: torch.Tensor,
        extractor: FeatureExtractor,
        clip_samples: int,
        augment: _Augment | None = None,
    ) -> None:
        self.waves, self.labels, self.extractor = waves, labels, extractor
        self.clip_samples, self.augment = clip_samples, augment

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        wave = self.waves[i].float() / 32767
        if self.augment is not None:
            slack = abs(self.clip_samples - wave.numel())
            offset = int(torch.randint(0, slack + 1, (1,))) if slack else 0
            wave = self.augment.wave(fit_length(wave, self.clip_samples, offset))
        else:
            wave = fit_length(wave, self.clip_samples)
        feats = self.extractor(wave)
        if self.augment is not None:
            feats = self.augment.feats(feats)
        return feats.unsqueeze(0), self.labels[i]


class SequenceDataset(Dataset):
    """Variable-length utterances: ``(features [n_feat, frames], character ids [L])``."""

    def __init__(
        self,
        waves: list[torch.Tensor],
        targets: list[torch.Tensor],
        extractor: FeatureExtractor,
        augment: _Augment | None = None,
    ) -> None:
        self.waves, self.targets, self.extractor, self.augment = waves, targets, extractor, augment

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        wave = self.waves[i].float() / 32767
        if self.augment is not None:
            wave = self.augment.wave(wave)
        feats = self.extractor(wave)
        if self.augment is not None:
            feats = self.augment.feats(feats)
        return feats, self.targets[i]


def collate_sequences(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Pad features (with 0, the normalised mean) and targets; return both with their lengths."""
    feats, targets = zip(*batch, strict=True)
    x_lens = torch.tensor([f.shape[-1] for f in feats])
    y_lens = torch.tensor([t.numel() for t in targets])
    x = torch.zeros(len(feats), feats[0].shape[0], int(x_lens.max()))
    y = torch.zeros(len(targets), int(y_lens.max()), dtype=torch.long)
    for i, (f, t) in enumerate(zip(feats, targets, strict=True)):
        x[i, :, : f.shape[-1]] = f
        y[i, : t.numel()] = t
    return (x, x_lens), (y, y_lens)


# --------------------------------------------------------------------------- sources


def prepare_input(wave: torch.Tensor, facts: dict[str, Any]) -> torch.Tensor:
    """Model input for one waveform (at the run's sample rate), exactly as evaluation prepares it."""
    extractor = FeatureExtractor.from_config(facts["features"])
    clip = facts.get("clip_seconds")
    if clip:
        wave = fit_length(trim_silence(wave, extractor.sample_rate), round(clip * extractor.sample_rate))
        return extractor(wave).unsqueeze(0)
    return extractor(wave)


class _SpeechSource(DataSource):
    """Shared machinery: feature extraction, augmentation, lazily loaded splits."""

    mode: str  # "clips" or "sequences"

    def _setup(self, params: dict[str, Any]) -> None:
        if params["sample_rate"] < 4000:
            raise ConfigError(f"sample_rate must be at least 4000 Hz, got {params['sample_rate']}")
        if params["n_mels"] < 8:
            raise ConfigError(f"n_mels must be at least 8, got {params['n_mels']}")
        if params["n_mfcc"] < 0 or params["n_mfcc"] > params["n_mels"]:
            raise ConfigError(f"n_mfcc must be in 0..n_mels ({params['n_mels']}), got {params['n_mfcc']}")
        if params["hop_ms"] <= 0 or params["win_ms"] < params["hop_ms"]:
            raise ConfigError(f"need 0 < hop_ms <= win_ms, got hop_ms={params['hop_ms']} win_ms={params['win_ms']}")
        snr = params["snr_db"]
        if len(snr) != 2 or snr[0] > snr[1]:
            raise ConfigError(f"snr_db must be [low, high], got {snr}")
        self.extractor = FeatureExtractor(
            params["sample_rate"], params["n_mels"], params["win_ms"], params["hop_ms"], params["n_mfcc"]
        )
        self.sample_rate = params["sample_rate"]
        self.augment = _Augment(params) if params["augment"] else None
        self._datasets: dict[str, Dataset] | None = None

    # facts shared by every speech source
    def _feature_facts(self) -> dict[str, Any]:
        return {
            "n_mels": self.extractor.n_features,
            "sample_rate": self.sample_rate,
            "features": self.extractor.config(),
        }

    def _clip_facts(self, class_names: list[str]) -> dict[str, Any]:
        frames = self.extractor.num_frames(self.clip_samples)
        return {
            "problem": "classification",
            "num_classes": len(class_names),
            "out_features": len(class_names),
            "class_names": list(class_names),
            "input_shape": [1, self.extractor.n_features, frames],
            "clip_seconds": self.clip_seconds,
            **self._feature_facts(),
        }

    def _clip_dataset(self, waves: list[torch.Tensor], labels: list[int], train: bool) -> ClipDataset:
        waves = [_to_int16(trim_silence(w, self.sample_rate)) for w in waves]
        return ClipDataset(
            waves,
            torch.tensor(labels, dtype=torch.long),
            self.extractor,
            self.clip_samples,
            self.augment if train else None,
        )

    def _sequence_dataset(self, waves: list[torch.Tensor], targets: list[list[int]], train: bool) -> SequenceDataset:
        return SequenceDataset(
            [_to_int16(trim_silence(w, self.sample_rate)) for w in waves],
            [torch.tensor(t, dtype=torch.long) for t in targets],
            self.extractor,
            self.augment if train else None,
        )

    def datasets(self) -> dict[str, Dataset]:
        if self._datasets is None:
            self._datasets = self._build()
        return self._datasets

    def _build(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def load_input(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """One audio file as the model's input (any rate and channel count: resampled, downmixed)."""
        return prepare_input(load_audio(path, self.sample_rate), self.facts)


def _feature_params(local: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "sample_rate n_mels win_ms hop_ms n_mfcc augment noise_prob snr_db "
        "freq_masks freq_mask_width time_masks time_mask_width"
    ).split()
    return {k: local[k] for k in keys}


class SpokenDigits(_SpeechSource):
    """Spoken digits synthesised with espeak-ng, split by voice: no test voice is heard in training.

    A voice is ``language+variant``: every language (accent) is combined with the variants
    (speakers) of each split, and the three variant lists are disjoint, so validation and test
    voices are new speakers. Speed and pitch are drawn per utterance. ``words`` mode says one
    digit ("seven") per utterance for keyword spotting (10 classes); ``strings`` mode says
    ``min_digits``..``max_digits`` random digits ("three one four") for speech recognition.

    Args:
        mode: words (classification, clips) or strings (recognition, sequences).
        num_utterances: training utterances.
        num_eval_utterances: utterances in each of validation and test.
        min_digits: shortest digit string (strings mode).
        max_digits: longest digit string (strings mode).
        languages: espeak-ng languages (accents) used by every split.
        train_variants: espeak-ng variants (speakers) of the training split.
        val_variants: variants of the validation split (disjoint from the others).
        test_variants: variants of the test split (disjoint from the others).
        speed_range: [low, high] speaking rate, words per minute.
        pitch_range: [low, high] pitch, 0-99.
        clip_seconds: clip length in words mode.
        seed: seed of the texts, voices, speeds and pitches.
        cache_dir: where synthesised WAVs are cached (default $ENGINE_CACHE_DIR/speech, ~/.cache/engine/speech).
        workers: parallel espeak-ng processes when synthesising.
        sample_rate: audio is resampled to this rate (Hz) before features.
        n_mels: mel filters of the log-mel features.
        win_ms: STFT window (Hann), milliseconds.
        hop_ms: STFT hop (frame shift), milliseconds.
        n_mfcc: 0 for log-mel features, else keep this many MFCCs (DCT of the log-mel).
        augment: augment the training split (noise, time shift, SpecAugment).
        noise_prob: probability of adding white or pink noise to a training utterance.
        snr_db: [low, high] signal-to-noise ratio range of that noise, dB.
        freq_masks: SpecAugment frequency masks per training utterance.
        freq_mask_width: widest frequency mask (mel bands).
        time_masks: SpecAugment time masks per training utterance.
        time_mask_width: widest time mask (frames; at most 20 % of the utterance).
    """

    def __init__(
        self,
        mode: Literal["words", "strings"] = "words",
        num_utterances: int = 3000,
        num_eval_utterances: int = 500,
        min_digits: int = 3,
        max_digits: int = 6,
        languages: list[str] = ["en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp"],  # noqa: B006
        train_variants: list[str] = ["m1", "m2", "m3", "m4", "m6", "f1", "f2", "f4", "klatt", "Andy", "linda", "john"],  # noqa: B006
        val_variants: list[str] = ["m5", "f3", "max"],  # noqa: B006
        test_variants: list[str] = ["m7", "f5", "Alex", "steph", "klatt3"],  # noqa: B006
        speed_range: list[int] = [130, 200],  # noqa: B006
        pitch_range: list[int] = [30, 70],  # noqa: B006
        clip_seconds: float = 1.0,
        seed: int = 0,
        cache_dir: str | None = None,
        workers: int = 2,
        sample_rate: int = 16000,
        n_mels: int = 40,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mfcc: int = 0,
        augment: bool = True,
        noise_prob: float = 0.5,
        snr_db: list[float] = [10.0, 30.0],  # noqa: B006
        freq_masks: int = 2,
        freq_mask_width: int = 6,
        time_masks: int = 2,
        time_mask_width: int = 8,
    ) -> None:
        self._setup(_feature_params(locals()))
        if num_utterances < 1 or num_eval_utterances < 0:
            raise ConfigError("num_utterances must be >= 1 and num_eval_utterances >= 0")
        if not 1 <= min_digits <= max_digits:
            raise ConfigError(f"need 1 <= min_digits <= max_digits, got {min_digits}..{max_digits}")
        if len(speed_range) != 2 or not 80 <= speed_range[0] <= speed_range[1] <= 450:
            raise ConfigError(f"speed_range must be [low, high] within 80..450 words per minute, got {speed_range}")
        if len(pitch_range) != 2 or not 0 <= pitch_range[0] <= pitch_range[1] <= 99:
            raise ConfigError(f"pitch_range must be [low, high] within 0..99, got {pitch_range}")
        if clip_seconds <= 0:
            raise ConfigError(f"clip_seconds must be positive, got {clip_seconds}")
        splits = {"train": train_variants, "val": val_variants, "test": test_variants}
        if not languages or not train_variants:
            raise ConfigError("spoken_digits needs at least one language and one training variant")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = sorted(set(splits[a]) & set(splits[b]))
            if shared:
                raise ConfigError(
                    f"variant(s) {', '.join(shared)} appear in both {a}_variants and {b}_variants",
                    hint="held-out voices must not be heard in training: keep the variant lists disjoint",
                )
        self.mode, self.clip_seconds = mode, clip_seconds
        self.clip_samples = round(clip_seconds * sample_rate)
        self.languages, self.splits = list(languages), {k: list(v) for k, v in splits.items()}
        self.counts = {"train": num_utterances, "val": num_eval_utterances, "test": num_eval_utterances}
        self.min_digits, self.max_digits = min_digits, max_digits
        self.speed_range, self.pitch_range, self.seed = list(speed_range), list(pitch_range), seed
        from engine.settings import cache_dir as engine_cache

        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else engine_cache() / "speech"
        self.workers = workers
        self.vocabulary = sorted(set(" ".join(DIGIT_WORDS)))

    @property
    def facts(self) -> dict[str, Any]:
        asr = {"vocabulary": list(self.vocabulary), "vocab_size": len(self.vocabulary) + 1}
        if self.mode == "words":
            return {**self._clip_facts(list(DIGIT_WORDS)), **asr}
        return {"problem": "transcription", **asr, "clip_seconds": None, **self._feature_facts()}

    def voices(self, split: str) -> list[str]:
        return [f"{lang}+{v}" for v in self.splits[split] for lang in self.languages]

    def utterances(self, split: str) -> tuple[list[Utterance], list[int]]:
        """The split's utterances (seeded) and their digit labels (words mode) or lengths."""
        rng = random.Random(f"{self.seed}-{split}-{self.mode}")
        voices = self.voices(split)
        rng.shuffle(voices)
        utts, labels = [], []
        for i in range(self.counts[split]):
            if self.mode == "words":
                label = i % 10
                text = DIGIT_WORDS[label]
            else:
                n = rng.randint(self.min_digits, self.max_digits)
                text = " ".join(DIGIT_WORDS[rng.randrange(10)] for _ in range(n))
                label = n
            speed = rng.randint(*self.speed_range)
            pitch = rng.randint(*self.pitch_range)
            utts.append(Utterance(text, voices[i % len(voices)], speed, pitch))
            labels.append(label)
        return utts, labels

    def _build(self) -> dict[str, Dataset]:
        check_voices(self.voices("train") + self.voices("val") + self.voices("test"), "data (speech.spoken_digits)")
        plan = {s: self.utterances(s) for s in ("train", "val", "test") if self.counts[s] > 0 and self.splits[s]}
        everything = [u for utts, _ in plan.values() for u in utts]
        paths = generate(everything, self.cache_dir, self.workers, label="speech.spoken_digits")
        out: dict[str, Dataset] = {}
        start = 0
        for split, (utts, labels) in plan.items():
            waves = [load_audio(p, self.sample_rate) for p in paths[start : start + len(utts)]]
            start += len(utts)
            if self.mode == "words":
                out[split] = self._clip_dataset(waves, labels, split == "train")
            else:
                targets = [encode_text(u.text, self.vocabulary) for u in utts]
                out[split] = self._sequence_dataset(waves, targets, split == "train")
        return out

    @property
    def collate_fn(self) -> Any:  # type: ignore[override]
        return collate_sequences if self.mode == "strings" else None


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


class WavFolder(_SpeechSource):
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
        augment: augment the training split (noise, time shift, SpecAugment).
        noise_prob: probability of adding white or pink noise to a training utterance.
        snr_db: [low, high] signal-to-noise ratio range of that noise, dB.
        freq_masks: SpecAugment frequency masks per training utterance.
        freq_mask_width: widest frequency mask (mel bands).
        time_masks: SpecAugment time masks per training utterance.
        time_mask_width: widest time mask (frames; at most 20 % of the utterance).
    """

    def __init__(
        self,
        path: str,
        clip_seconds: float = 1.0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        on_error: Literal["raise", "skip"] = "raise",
        sample_rate: int = 16000,
        n_mels: int = 40,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mfcc: int = 0,
        augment: bool = True,
        noise_prob: float = 0.5,
        snr_db: list[float] = [10.0, 30.0],  # noqa: B006
        freq_masks: int = 2,
        freq_mask_width: int = 6,
        time_masks: int = 2,
        time_mask_width: int = 8,
    ) -> None:
        self._setup(_feature_params(locals()))
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


class Transcribed(_SpeechSource):
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
        augment: augment the training split (noise, time shift, SpecAugment).
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
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        on_error: Literal["raise", "skip"] = "raise",
        sample_rate: int = 16000,
        n_mels: int = 40,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mfcc: int = 0,
        augment: bool = True,
        noise_prob: float = 0.5,
        snr_db: list[float] = [10.0, 30.0],  # noqa: B006
        freq_masks: int = 2,
        freq_mask_width: int = 6,
        time_masks: int = 2,
        time_mask_width: int = 8,
    ) -> None:
        self._setup(_feature_params(locals()))
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
