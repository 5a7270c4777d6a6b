"""Training augmentation on torch, seeded per utterance: speed (tempo) perturbation, vocal-tract-length
perturbation, synthetic room reverberation, a random spectral envelope (equalisation: another voice source's
tilt and resonances), bandwidth variation (a low-pass at a random cut-off, or a round
trip through 8 kHz, the band of a telephone or an 8 kHz voice), level (gain, saturating at full scale),
leading and trailing silence (sequences), additive noise and SpecAugment.

Every random draw comes from a ``torch.Generator`` seeded by (augmentation seed, utterance index, how
often that utterance was drawn before), so a run's augmentation depends on its seeds only: not on
thread counts, the global RNG or what else drew random numbers. Validation and test are never augmented.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from engine import ConfigError
from engine_speech.audio import resample
from engine_speech.features import add_noise, hz_to_mel, spec_augment

EQ_POINTS = 6  # control points of the random spectral envelope: 0, 0.46, 1.2, 2.5, 4.6, 8 kHz at 16 kHz


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def perturb_speed(wave: torch.Tensor, factor: float, sample_rate: int) -> torch.Tensor:
    """``wave`` played ``factor`` times faster (tempo and pitch together), by windowed-sinc resampling.

    The intermediate rate is rounded to 100 Hz so the polyphase filter stays small.
    """
    new = max(100, round(sample_rate / factor / 100) * 100)
    return wave if new == sample_rate else resample(wave, sample_rate, new)


def room_impulse(
    rt60: float, sample_rate: int, drr_db: float = 5.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A synthetic room impulse response: a direct path, then exponentially decaying Gaussian noise that
    falls 60 dB in ``rt60`` seconds, scaled to a direct-to-reverberant energy ratio of ``drr_db``."""
    n = max(2, round(rt60 * sample_rate))
    t = torch.arange(1, n, dtype=torch.float32) / sample_rate
    tail = torch.randn(n - 1, generator=generator) * torch.exp(-3 * math.log(10) * t / rt60)  # -60 dB at rt60
    tail = tail * math.sqrt(10 ** (-drr_db / 10) / float(tail.pow(2).sum().clamp_min(1e-12)))
    return torch.cat([torch.ones(1), tail])


def reverberate(wave: torch.Tensor, impulse: torch.Tensor) -> torch.Tensor:
    """``wave`` convolved with ``impulse`` (FFT), cut to its length and rescaled to its RMS."""
    n = wave.numel() + impulse.numel() - 1
    size = 1 << (n - 1).bit_length()
    out = torch.fft.irfft(torch.fft.rfft(wave, size) * torch.fft.rfft(impulse, size), size)[: wave.numel()]
    return out * (wave.pow(2).mean().sqrt() / out.pow(2).mean().sqrt().clamp_min(1e-8))


def low_pass(wave: torch.Tensor, cutoff: float, sample_rate: int, width: float = 0.1) -> torch.Tensor:
    """``wave`` without its energy above ``cutoff`` Hz (FFT mask: flat below, a linear roll-off over ``width``
    x ``cutoff`` above, zero beyond)."""
    n = wave.numel()
    freqs = torch.fft.rfftfreq(n, 1.0 / sample_rate)
    mask = ((cutoff * (1 + width) - freqs) / (cutoff * width)).clamp(0.0, 1.0)
    return torch.fft.irfft(torch.fft.rfft(wave) * mask, n)


def equalise(wave: torch.Tensor, gains_db: list[float] | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``wave`` through a smooth equaliser: ``gains_db`` at points equally spaced on the mel scale from 0 Hz to
    the Nyquist frequency, linear in between (FFT mask), rescaled to the input's RMS (level is `apply_gain`'s)."""
    n, gains = wave.numel(), torch.as_tensor(gains_db, dtype=torch.float64)
    mel = hz_to_mel(torch.fft.rfftfreq(n, 1.0 / sample_rate).double()) / float(hz_to_mel(sample_rate / 2))
    pos = mel.clamp(0, 1) * (gains.numel() - 1)
    lo = pos.floor().long().clamp(max=gains.numel() - 2)
    db = gains[lo] + (pos - lo) * (gains[lo + 1] - gains[lo])
    out = torch.fft.irfft(torch.fft.rfft(wave) * (10 ** (db / 20)).float(), n)
    return out * (wave.pow(2).mean().sqrt() / out.pow(2).mean().sqrt().clamp_min(1e-8))


def narrowband(wave: torch.Tensor, sample_rate: int, rate: int = 8000) -> torch.Tensor:
    """``wave`` resampled to ``rate`` Hz and back: nothing above ``rate`` / 2 is left."""
    if sample_rate <= rate:
        return wave
    return resample(resample(wave, sample_rate, rate), rate, sample_rate)[: wave.numel()]


def apply_gain(wave: torch.Tensor, gain_db: float) -> torch.Tensor:
    """``wave`` scaled by ``gain_db``, saturating at full scale (-1..1) as a loud recording clips."""
    return (wave * 10 ** (gain_db / 20)).clamp(-1.0, 1.0)


def pad_silence(wave: torch.Tensor, lead: int, trail: int) -> torch.Tensor:
    """``lead`` samples of silence before ``wave`` and ``trail`` after it."""
    return torch.nn.functional.pad(wave, (lead, trail))


def _range(params: dict[str, Any], key: str, low: float, high: float) -> list[float]:
    value = [float(v) for v in params[key]]
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ConfigError(f"{key} must be [low, high] within {low}..{high}, got {params[key]}")
    return value


class Augment:
    """The training-split augmentation of a speech source (see the module docstring)."""

    def __init__(self, params: dict[str, Any], sample_rate: int, seed: int = 0) -> None:
        self.sample_rate, self.seed = sample_rate, seed
        self.tempo_range = _range(params, "tempo_range", 0.5, 2.0)
        self.vtlp_range = _range(params, "vtlp_range", 0.7, 1.4)
        self.rt60_range = _range(params, "rt60_range", 0.01, 2.0)
        self.reverb_prob, self.noise_prob = float(params["reverb_prob"]), float(params["noise_prob"])
        if not (0 <= self.reverb_prob <= 1 and 0 <= self.noise_prob <= 1):
            raise ConfigError("reverb_prob and noise_prob must be within 0..1")
        self.snr_db = params["snr_db"]
        # bandwidth, level and silence (absent keys: off, for callers that predate them)
        self.lowpass_prob = float(params.get("lowpass_prob", 0.0))
        self.narrowband_prob = float(params.get("narrowband_prob", 0.0))
        if not (0 <= self.lowpass_prob <= 1 and 0 <= self.narrowband_prob <= 1):
            raise ConfigError("lowpass_prob and narrowband_prob must be within 0..1")
        nyquist = sample_rate / 2
        self.cutoff_hz = _range({"cutoff_hz": params.get("cutoff_hz", [nyquist, nyquist])}, "cutoff_hz", 500, nyquist)
        self.gain_db = _range({"gain_db": params.get("gain_db", [0.0, 0.0])}, "gain_db", -60.0, 40.0)
        self.eq_prob, self.eq_db = float(params.get("eq_prob", 0.0)), float(params.get("eq_db", 0.0))
        if not (0 <= self.eq_prob <= 1 and 0 <= self.eq_db <= 30):
            raise ConfigError(f"eq_prob must be within 0..1 and eq_db within 0..30, got {self.eq_prob}, {self.eq_db}")
        self.pad_seconds = _range({"pad_seconds": params.get("pad_seconds", [0.0, 0.0])}, "pad_seconds", 0.0, 5.0)
        self.freq_masks, self.freq_mask_width = params["freq_masks"], params["freq_mask_width"]
        self.time_masks, self.time_mask_width = params["time_masks"], params["time_mask_width"]
        self._draws: dict[int, int] = {}

    def generator(self, index: int) -> torch.Generator:
        """The generator of the next augmentation of utterance ``index``."""
        n = self._draws.get(index, 0)
        self._draws[index] = n + 1
        return torch.Generator().manual_seed((self.seed * 1_000_003 + index) * 10_007 + n)

    def perturb(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Speed perturbation, then (with ``reverb_prob``) a synthetic room, (with ``eq_prob``) a spectral envelope,
        then the channel: bandwidth, level."""
        lo, hi = self.tempo_range
        if hi > lo:
            wave = perturb_speed(wave, _uniform(g, lo, hi), self.sample_rate)
        if self.reverb_prob > 0 and float(torch.rand((), generator=g)) < self.reverb_prob:
            rt60 = _uniform(g, *self.rt60_range)
            wave = reverberate(wave, room_impulse(rt60, self.sample_rate, _uniform(g, 0.0, 10.0), g))
        if self.eq_prob > 0 and float(torch.rand((), generator=g)) < self.eq_prob:  # no draw when off
            wave = equalise(wave, [_uniform(g, -self.eq_db, self.eq_db) for _ in range(EQ_POINTS)], self.sample_rate)
        return self.level(self.bandwidth(wave, g), g)

    def bandwidth(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """With ``narrowband_prob`` an 8 kHz round trip, else with ``lowpass_prob`` a low-pass at a cut-off drawn
        from ``cutoff_hz``."""
        draw = float(torch.rand((), generator=g))
        if draw < self.narrowband_prob:
            return narrowband(wave, self.sample_rate)
        if draw < self.narrowband_prob + (1 - self.narrowband_prob) * self.lowpass_prob:
            return low_pass(wave, _uniform(g, *self.cutoff_hz), self.sample_rate)
        return wave

    def level(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """A gain drawn from ``gain_db`` (saturating at full scale)."""
        lo, hi = self.gain_db
        return apply_gain(wave, _uniform(g, lo, hi)) if hi > lo or lo != 0 else wave

    def silence(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Leading and trailing silence, each of a length drawn from ``pad_seconds``."""
        lo, hi = self.pad_seconds
        if hi <= 0:
            return wave
        lead, trail = (round(_uniform(g, lo, hi) * self.sample_rate) for _ in range(2))
        return pad_silence(wave, lead, trail)

    def noise(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """White or pink noise at an SNR drawn from ``snr_db``, with probability ``noise_prob``."""
        if self.noise_prob > 0 and float(torch.rand((), generator=g)) < self.noise_prob:
            snr = _uniform(g, *self.snr_db)
            kind = "pink" if float(torch.rand((), generator=g)) < 0.5 else "white"
            wave = add_noise(wave, snr, kind, generator=g)
        return wave

    def warp(self, g: torch.Generator) -> float:
        """A vocal-tract-length warp factor."""
        lo, hi = self.vtlp_range
        return _uniform(g, lo, hi) if hi > lo else 1.0

    def feats(self, feats: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return spec_augment(
            feats, self.freq_masks, self.freq_mask_width, self.time_masks, self.time_mask_width, generator=g
        )
