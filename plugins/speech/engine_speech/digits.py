"""``speech.spoken_digits``: digits spoken by espeak-ng voices, split by voice."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from engine.errors import ConfigError
from engine_speech.audio import load_audio
from engine_speech.datasets import collate_sequences
from engine_speech.source import SpeechSource, feature_params
from engine_speech.synth import DIGIT_WORDS, Utterance, check_voices, generate
from engine_speech.text import encode_text


class SpokenDigits(SpeechSource):
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
        self._setup(feature_params(locals()))
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
