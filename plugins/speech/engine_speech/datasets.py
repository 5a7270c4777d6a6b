"""Speech datasets: fixed-length clips, variable-length sequences, their collation and augmentation."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from engine_speech.audio import fit_length, trim_silence
from engine_speech.features import FeatureExtractor, add_noise, spec_augment


class Augment:
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


class ClipDataset(Dataset):
    """Fixed-length clips: ``(features [1, n_feat, frames], class index)``."""

    def __init__(
        self,
        waves: list[torch.Tensor],
        labels: torch.Tensor,
        extractor: FeatureExtractor,
        clip_samples: int,
        augment: Augment | None = None,
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
        augment: Augment | None = None,
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


def prepare_input(wave: torch.Tensor, facts: dict[str, Any]) -> torch.Tensor:
    """Model input for one waveform (at the run's sample rate), exactly as evaluation prepares it."""
    extractor = FeatureExtractor.from_config(facts["features"])
    clip = facts.get("clip_seconds")
    if clip:
        wave = fit_length(trim_silence(wave, extractor.sample_rate), round(clip * extractor.sample_rate))
        return extractor(wave).unsqueeze(0)
    return extractor(wave)
