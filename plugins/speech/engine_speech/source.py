"""Speech data sources: class folders of audio, transcribed manifests, and espeak-ng spoken digits.

Two shapes of data come out of them:

- **clips** (keyword spotting, the core ``supervised`` task): every utterance is trimmed of
  silence and padded/cropped to ``clip_seconds``; a sample is ``(features [1, n_mels, frames], class)``
  and the ``input_shape`` fact is ``[1, n_mels, frames]``;
- **sequences** (speech recognition, the ``speech.ctc`` task): variable-length; a batch, padded by
  `collate_sequences`, is ``((features [B, n_mels, T], lengths [B]), (char ids [B, L], lengths [B]))``.
  Character ids start at 1 (0 is the CTC blank); the ``vocabulary`` fact lists the characters.

Augmentation (training split only, ``augment=true``, see `engine_speech.augment`): speed
perturbation, a synthetic room, bandwidth (random low-pass or 8 kHz round trip) and level (spoken_digits),
leading/trailing silence (sequences) or a random time shift (clips), additive white or pink noise at a random
SNR, vocal-tract-length perturbation of the filterbank, then SpecAugment time and frequency masks.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset

from engine import ConfigError
from engine.data import DataSource
from engine_speech.audio import load_audio
from engine_speech.augment import Augment
from engine_speech.datasets import ClipDataset, SequenceDataset, prepare_input, stored_wave
from engine_speech.features import FeatureExtractor


class SpeechSource(DataSource):
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
        self.augment = Augment(params, self.sample_rate) if params["augment"] else None
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
        waves = [stored_wave(w, self.sample_rate) for w in waves]
        return ClipDataset(
            waves,
            torch.tensor(labels, dtype=torch.long),
            self.extractor,
            self.clip_samples,
            self.augment if train else None,
        )

    def _sequence_dataset(self, waves: list[torch.Tensor], targets: list[list[int]], train: bool) -> SequenceDataset:
        return SequenceDataset(
            [stored_wave(w, self.sample_rate) for w in waves],
            [torch.tensor(t, dtype=torch.long) for t in targets],
            self.extractor,
            self.augment if train else None,
        )

    def datasets(self) -> dict[str, Dataset]:
        if self._datasets is None:
            if self.augment is not None:  # the run's seed (seed_everything) and the data's seed
                self.augment.seed = int(torch.initial_seed()) % 1_000_003 * 1_009 + int(getattr(self, "seed", 0))
            self._datasets = self._build()
        return self._datasets

    def _build(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def load_input(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """One audio file as the model's input (any rate and channel count: resampled, downmixed)."""
        return prepare_input(load_audio(path, self.sample_rate), self.facts)


def feature_params(local: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "sample_rate n_mels win_ms hop_ms n_mfcc augment tempo_range vtlp_range reverb_prob rt60_range "
        "noise_prob snr_db freq_masks freq_mask_width time_masks time_mask_width lowpass_prob narrowband_prob "
        "cutoff_hz gain_db pad_seconds eq_prob eq_db"
    ).split()
    return {k: local[k] for k in keys if k in local}  # sources without the newer keys leave them off
