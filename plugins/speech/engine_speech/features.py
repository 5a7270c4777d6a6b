"""Speech features on torch: STFT power spectrum, log-mel filterbank, MFCC, and training augmentation.

- `mel_filterbank`: triangular filters on the HTK mel scale, ``[n_freqs, n_mels]``;
- `dct_matrix`: orthonormal DCT-II, ``[n_mels, n_mfcc]``;
- `FeatureExtractor`: waveform ``[time]`` -> features ``[n_features, frames]`` (log-mel or MFCC),
  normalised per utterance (zero mean, unit variance) so loudness does not matter;
- `spec_augment` (time and frequency masking, Park et al. 2019) and `add_noise`
  (white or pink noise at a random SNR): used on the training split only.

The extractor's settings travel with a run as the ``features`` fact, so ``engine transcribe``
rebuilds exactly the features the model was trained on.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def vtlp_warp(freqs: torch.Tensor, alpha: float, nyquist: float, boundary: float = 4800.0) -> torch.Tensor:
    """Vocal-tract-length warp of frequencies (Jaitly & Hinton 2013): ``f * alpha`` up to a knee, then
    linear so that the Nyquist frequency stays fixed."""
    knee = boundary * min(alpha, 1.0) / alpha
    high = nyquist - (nyquist - boundary * min(alpha, 1.0)) / (nyquist - knee) * (nyquist - freqs)
    return torch.where(freqs <= knee, freqs * alpha, high)


def mel_filterbank(
    n_fft: int, sample_rate: int, n_mels: int, f_min: float = 20.0, f_max: float | None = None, warp: float = 1.0
) -> torch.Tensor:
    """Triangular mel filters ``[n_fft // 2 + 1, n_mels]`` (HTK mel scale, peak 1).

    ``warp`` != 1 applies vocal-tract-length perturbation: each FFT bin is read as the warped frequency.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    if warp != 1.0:
        freqs = vtlp_warp(freqs, warp, sample_rate / 2)
    mels = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64)
    edges = mel_to_hz(mels)  # n_mels + 2 corner frequencies
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower[None]) / (centre - lower)[None]
    down = (upper[None] - freqs[:, None]) / (upper - centre)[None]
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """Orthonormal DCT-II basis ``[n_mels, n_mfcc]``: ``mfcc = log_mel @ dct``."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)
    basis = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None])
    basis[:, 0] *= 1 / math.sqrt(2)
    return (basis * math.sqrt(2.0 / n_mels)).float()


class FeatureExtractor:
    """Waveform -> log-mel (or MFCC) features ``[n_features, frames]``.

    Args:
        sample_rate: rate of the waveforms it receives (Hz).
        n_mels: mel filters.
        win_ms: analysis window (Hann), milliseconds.
        hop_ms: frame shift, milliseconds.
        n_mfcc: 0 for log-mel features, else the number of cepstral coefficients kept.
        f_min: lowest filter edge (Hz).
        normalize: per-utterance mean/variance normalisation.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 40,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mfcc: int = 0,
        f_min: float = 20.0,
        normalize: bool = True,
    ) -> None:
        self.sample_rate, self.n_mels, self.n_mfcc = sample_rate, n_mels, n_mfcc
        self.win_ms, self.hop_ms, self.f_min, self.normalize = win_ms, hop_ms, f_min, normalize
        self.win_length = round(sample_rate * win_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        self.window = torch.hann_window(self.win_length)
        self.mel = mel_filterbank(self.n_fft, sample_rate, n_mels, f_min)
        self.dct = dct_matrix(n_mels, n_mfcc) if n_mfcc else None

    @property
    def n_features(self) -> int:
        return self.n_mfcc or self.n_mels

    def config(self) -> dict[str, Any]:
        """The settings, as plain data (the ``features`` fact)."""
        return {
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "win_ms": self.win_ms,
            "hop_ms": self.hop_ms,
            "n_mfcc": self.n_mfcc,
            "f_min": self.f_min,
            "normalize": self.normalize,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureExtractor:
        return cls(**config)

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.hop_length + 1  # centred STFT

    def power_spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """``|STFT|^2`` ``[..., n_fft // 2 + 1, frames]`` (Hann window, centred frames)."""
        spec = torch.stft(
            wave,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spec.real.pow(2) + spec.imag.pow(2)

    def __call__(self, wave: torch.Tensor, warp: float = 1.0) -> torch.Tensor:
        """Features of ``wave``; ``warp`` != 1 warps the frequency axis (VTLP, training augmentation)."""
        power = self.power_spectrogram(wave.float())
        mel = (
            self.mel
            if warp == 1.0
            else mel_filterbank(self.n_fft, self.sample_rate, self.n_mels, self.f_min, warp=warp)
        )
        feats = torch.log(torch.matmul(power.transpose(-1, -2), mel) + 1e-6)  # [..., frames, n_mels]
        if self.dct is not None:
            feats = feats @ self.dct
        feats = feats.transpose(-1, -2)  # [..., n_features, frames]
        if self.normalize:
            mean = feats.mean(dim=(-1, -2), keepdim=True)
            std = feats.std(dim=(-1, -2), keepdim=True).clamp_min(1e-5)
            feats = (feats - mean) / std
        return feats


def spec_augment(
    feats: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 10,
    max_time_fraction: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment masking of ``[n_features, frames]``: masked bands and spans are set to 0 (the mean)."""
    feats = feats.clone()
    n_feat, n_frames = feats.shape[-2], feats.shape[-1]
    for _ in range(freq_masks):
        w = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
        if 0 < w < n_feat:
            f0 = int(torch.randint(0, n_feat - w + 1, (1,), generator=generator))
            feats[..., f0 : f0 + w, :] = 0
    t_cap = min(time_width, int(n_frames * max_time_fraction))
    for _ in range(time_masks):
        w = int(torch.randint(0, t_cap + 1, (1,), generator=generator)) if t_cap > 0 else 0
        if 0 < w < n_frames:
            t0 = int(torch.randint(0, n_frames - w + 1, (1,), generator=generator))
            feats[..., t0 : t0 + w] = 0
    return feats


def add_noise(
    wave: torch.Tensor, snr_db: float, kind: str = "white", generator: torch.Generator | None = None
) -> torch.Tensor:
    """``wave`` plus white or pink noise scaled to signal-to-noise ratio ``snr_db``."""
    noise = torch.randn(wave.shape, generator=generator)
    if kind == "pink":  # 1/f power: shape white noise in the frequency domain
        spec = torch.fft.rfft(noise)
        f = torch.arange(spec.shape[-1]).clamp_min(1).float()
        noise = torch.fft.irfft(spec / f.sqrt(), n=wave.shape[-1])
    signal_power = wave.pow(2).mean().clamp_min(1e-10)
    noise_power = noise.pow(2).mean().clamp_min(1e-10)
    scale = torch.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return wave + scale * noise
