"""Speech datasets: fixed-length clips, variable-length sequences, their collation and augmentation."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from engine_speech.audio import fit_length, trim_silence
from engine_speech.augment import Augment
from engine_speech.features import FeatureExtractor


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
        if self.augment is None:
            return self.extractor(fit_length(wave, self.clip_samples)).unsqueeze(0), self.labels[i]
        g = self.augment.generator(i)
        wave = trim_silence(self.augment.perturb(wave, g), self.extractor.sample_rate)
        slack = abs(self.clip_samples - wave.numel())
        offset = int(torch.randint(0, slack + 1, (1,), generator=g)) if slack else 0
        wave = self.augment.noise(fit_length(wave, self.clip_samples, offset), g)
        feats = self.augment.feats(self.extractor(wave, self.augment.warp(g)), g)
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
        if self.augment is None:
            return self.extractor(wave), self.targets[i]
        g = self.augment.generator(i)
        wave = self.augment.noise(self.augment.silence(self.augment.perturb(wave, g), g), g)
        return self.augment.feats(self.extractor(wave, self.augment.warp(g)), g), self.targets[i]


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


def to_int16(wave: torch.Tensor) -> torch.Tensor:
    """A float waveform as stored int16 samples (rescaled only where it would clip)."""
    peak = wave.abs().max().clamp_min(1e-6)
    scale = 0.95 / peak if peak > 1 else 1.0
    return (wave * scale * 32767).round().to(torch.int16)


def stored_wave(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """What every split keeps of an utterance: silence trimmed, int16. The one preparation of raw audio."""
    return to_int16(trim_silence(wave, sample_rate))


def prepare_input(wave: torch.Tensor, facts: dict[str, Any]) -> torch.Tensor:
    """Model input for one waveform (at the run's sample rate), exactly as evaluation prepares it.

    Transcribe, predict and serve go through here: the wave is stored as the splits store it (`stored_wave`:
    silence trimmed, int16), then read back as the evaluation datasets read it (clips fitted to
    ``clip_seconds``)."""
    extractor = FeatureExtractor.from_config(facts["features"])
    wave = stored_wave(wave, extractor.sample_rate).float() / 32767
    clip = facts.get("clip_seconds")
    if clip:
        return extractor(fit_length(wave, round(clip * extractor.sample_rate))).unsqueeze(0)
    return extractor(wave)
