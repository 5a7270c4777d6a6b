"""Audio I/O (soundfile), downmixing and band-limited resampling on torch.

`load_audio` reads any file libsndfile understands (WAV, FLAC, OGG …), downmixes to mono
and resamples to the requested rate; an unreadable or empty file raises one
`engine.EngineError` naming the file.

`resample` is a polyphase windowed-sinc resampler (Kaiser window), the algorithm of
``torchaudio.functional.resample``: one ``conv1d`` whose stride is the (reduced) input rate and
whose output channels are the output phases.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import torch
import torch.nn.functional as F

from engine import EngineError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au")


@lru_cache(maxsize=128)  # speed perturbation draws from ~50 rates
def _sinc_kernel(orig: int, new: int, zeros: int = 16, rolloff: float = 0.945, beta: float = 14.769656459379492):
    """Polyphase filter bank ``[new, 1, K]`` for resampling ``orig`` -> ``new`` (both reduced by their gcd)."""
    cutoff = min(orig, new) * rolloff  # in units of the reduced rates: a low-pass just below the lower Nyquist
    width = math.ceil(zeros * orig / cutoff)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx) * cutoff
    t = t.clamp(-zeros, zeros)
    window = torch.i0(beta * torch.sqrt(1 - (t / zeros) ** 2)) / torch.i0(torch.tensor(beta, dtype=torch.float64))
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (sinc * window * (cutoff / orig)).float(), width


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``wave`` (``[..., time]``) from ``orig_sr`` to ``new_sr`` Hz with a windowed-sinc filter."""
    if orig_sr <= 0 or new_sr <= 0:
        raise EngineError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return wave
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, width = _sinc_kernel(orig, new)
    shape = wave.shape
    x = wave.reshape(-1, 1, shape[-1]).to(kernel.dtype)
    n = shape[-1]
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernel, stride=orig)  # [B, new, frames]: one output phase per channel
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(new * n / orig)
    return y[..., :target].reshape(*shape[:-1], target).to(wave.dtype)


def to_mono(data: torch.Tensor) -> torch.Tensor:
    """``[time, channels]`` (soundfile's layout) or ``[time]`` -> ``[time]``: the mean of the channels."""
    return data.mean(dim=1) if data.dim() == 2 else data


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> torch.Tensor:
    """Read an audio file as mono float32 in ``[-1, 1]`` at ``sample_rate`` Hz (``[time]``)."""
    import soundfile as sf

    if not os.path.isfile(path):
        raise EngineError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile.LibsndfileError, RuntimeError, TypeError on odd files
        raise EngineError(
            f"cannot read audio file {path}: {exc}",
            hint="give a WAV, FLAC or OGG file libsndfile can read (convert others with ffmpeg or sox)",
        ) from None
    if data.shape[0] == 0:
        raise EngineError(f"audio file {path} is empty (0 samples)", hint="remove it or record it again")
    wave = to_mono(torch.from_numpy(data))
    return resample(wave, int(sr), sample_rate)


def trim_silence(
    wave: torch.Tensor, sample_rate: int, threshold_db: float = -40.0, margin_s: float = 0.05
) -> torch.Tensor:
    """Cut leading and trailing silence: frames (10 ms) more than ``-threshold_db`` below the loudest frame."""
    hop = max(1, sample_rate // 100)
    if wave.numel() < hop:
        return wave
    frames = wave[: wave.numel() // hop * hop].reshape(-1, hop)
    energy = 10 * torch.log10(frames.pow(2).mean(1) + 1e-10)
    loud = torch.nonzero(energy > energy.max() + threshold_db).flatten()
    if loud.numel() == 0:
        return wave
    margin = int(margin_s * sample_rate)
    start = max(0, int(loud[0]) * hop - margin)
    end = min(wave.numel(), (int(loud[-1]) + 1) * hop + margin)
    return wave[start:end]


def fit_length(wave: torch.Tensor, length: int, offset: int | None = None) -> torch.Tensor:
    """Pad with zeros or crop ``wave`` to ``length`` samples; centred unless ``offset`` (of the padding) is given."""
    n = wave.numel()
    if n >= length:
        start = (n - length) // 2 if offset is None else min(max(0, offset), n - length)
        return wave[start : start + length]
    pad = length - n
    left = pad // 2 if offset is None else min(max(0, offset), pad)
    return F.pad(wave, (left, pad - left))
