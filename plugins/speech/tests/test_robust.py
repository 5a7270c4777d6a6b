"""Training for robustness to another synthesiser: speaker (tempo, vocal-tract length, spectral envelope), bandwidth,
level and silence augmentation (issue 37, item 3).

Each transform has a property that fails if it does nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine import ConfigError


def _band_energy(wave, sample_rate: int, lo: float, hi: float) -> float:
    import torch

    spec = torch.fft.rfft(wave).abs().pow(2)
    freqs = torch.fft.rfftfreq(wave.numel(), 1.0 / sample_rate)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum())


def _noise(n: int = 16000):
    import torch

    return torch.randn(n, generator=torch.Generator().manual_seed(0)) * 0.1


def _tone(freqs: tuple[float, ...], n: int = 16000, sample_rate: int = 16000):
    import torch

    t = torch.arange(n) / sample_rate
    return sum(0.3 * torch.sin(2 * torch.pi * f * t) for f in freqs)


def _peak_hz(wave, sample_rate: int = 16000) -> float:
    import torch

    return float(torch.fft.rfftfreq(wave.numel(), 1.0 / sample_rate)[torch.fft.rfft(wave).abs().argmax()])


def test_speed_perturbation_moves_pitch_and_formants_with_tempo() -> None:
    from engine_speech.augment import perturb_speed

    wave = _tone((1000.0,))
    faster, slower = perturb_speed(wave, 1.1, 16000), perturb_speed(wave, 0.9, 16000)
    assert abs(faster.numel() - 16000 / 1.1) < 100 and abs(slower.numel() - 16000 / 0.9) < 100
    assert _peak_hz(faster) == pytest.approx(1100, abs=15) and _peak_hz(slower) == pytest.approx(900, abs=15)


def test_vocal_tract_length_perturbation_moves_the_spectrum_along_the_mel_axis() -> None:
    from engine_speech.features import FeatureExtractor

    extractor = FeatureExtractor(normalize=False)
    band = lambda warp: int(extractor(_tone((3000.0,)), warp).mean(-1).argmax())  # noqa: E731
    assert band(1.15) >= band(1.0) + 2 and band(0.85) <= band(1.0) - 2  # 3 kHz read as 3.45 / 2.55 kHz


def test_equalise_reshapes_the_spectrum_at_the_same_level() -> None:
    import torch
    from engine_speech.augment import equalise

    wave = _noise()
    assert torch.allclose(equalise(wave, [0.0] * 6, 16000), wave, atol=1e-5)
    tilted = equalise(wave, [-12, -7, -2, 2, 7, 12], 16000)  # +24 dB from 0 Hz to 8 kHz
    rms = lambda w: float(w.pow(2).mean().sqrt())  # noqa: E731
    assert rms(tilted) == pytest.approx(rms(wave), rel=1e-4)
    before = _band_energy(wave, 16000, 5000, 8000) / _band_energy(wave, 16000, 50, 400)
    after = _band_energy(tilted, 16000, 5000, 8000) / _band_energy(tilted, 16000, 50, 400)
    assert 10 * torch.log10(torch.tensor(after / before)) > 15


def test_augment_draws_a_spectral_envelope_only_when_asked(augment_off: dict) -> None:
    import torch
    from engine_speech.augment import Augment

    wave = _noise()
    off = Augment({**augment_off, "tempo_range": [0.9, 1.1]}, 16000)
    same = Augment({**augment_off, "tempo_range": [0.9, 1.1], "eq_prob": 0.0, "eq_db": 10}, 16000)
    assert torch.equal(off.perturb(wave, off.generator(3)), same.perturb(wave, same.generator(3)))  # same stream
    eq = Augment({**augment_off, "eq_prob": 1.0, "eq_db": 10}, 16000)
    outs = [eq.perturb(wave, eq.generator(0)) for _ in range(2)]
    assert not torch.allclose(outs[0], wave, atol=1e-3) and not torch.allclose(outs[0], outs[1], atol=1e-3)
    with pytest.raises(ConfigError, match="eq_db"):
        Augment({**augment_off, "eq_prob": 1.0, "eq_db": 40}, 16000)


def test_low_pass_removes_energy_above_the_cutoff() -> None:
    from engine_speech.augment import low_pass

    wave = _noise()
    out = low_pass(wave, 3000, 16000)
    assert _band_energy(out, 16000, 3300, 8001) < 1e-6 * _band_energy(wave, 16000, 3300, 8001)
    assert _band_energy(out, 16000, 0, 3000) == pytest.approx(_band_energy(wave, 16000, 0, 3000), rel=1e-3)


def test_narrowband_round_trip_leaves_nothing_above_4k() -> None:
    from engine_speech.augment import narrowband

    wave = _noise()
    out = narrowband(wave, 16000)
    assert out.numel() == wave.numel()
    assert _band_energy(out, 16000, 4100, 8001) < 1e-3 * _band_energy(wave, 16000, 4100, 8001)
    assert _band_energy(out, 16000, 100, 3500) > 0.9 * _band_energy(wave, 16000, 100, 3500)


def test_gain_scales_and_saturates() -> None:
    from engine_speech.augment import apply_gain

    wave = _noise()
    louder = apply_gain(wave, 20 * 0.30103)  # x2
    assert float(louder.pow(2).mean().sqrt()) == pytest.approx(2 * float(wave.pow(2).mean().sqrt()), rel=1e-3)
    assert float(apply_gain(wave, 40).abs().max()) == 1.0  # clipped at full scale


def test_augment_draws_channel_and_silence_per_seed(augment_off: dict) -> None:
    import torch
    from engine_speech.augment import Augment

    wave = _noise()
    narrow = Augment({**augment_off, "narrowband_prob": 1.0}, 16000)
    out = narrow.perturb(wave, narrow.generator(0))
    assert _band_energy(out, 16000, 4100, 8001) < 1e-3 * _band_energy(wave, 16000, 4100, 8001)
    low = Augment({**augment_off, "lowpass_prob": 1.0, "cutoff_hz": [2000, 3000]}, 16000)
    out = low.perturb(wave, low.generator(0))
    assert _band_energy(out, 16000, 3300, 8001) < 1e-6 * _band_energy(wave, 16000, 3300, 8001)
    quiet = Augment({**augment_off, "gain_db": [-30, -20]}, 16000)
    ratio = float(quiet.perturb(wave, quiet.generator(0)).pow(2).mean() / wave.pow(2).mean())
    assert 10**-3 <= ratio <= 10**-2
    pad = Augment({**augment_off, "pad_seconds": [0.1, 0.3]}, 16000)
    a, b = pad.silence(wave, torch.Generator().manual_seed(7)), pad.silence(wave, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)  # the same seed, the same silence
    assert 16000 + 3200 <= a.numel() <= 16000 + 9600
    lead = int(torch.nonzero(a).flatten()[0])
    assert 1600 <= lead <= 4800 and torch.equal(a[lead : lead + 16000], wave)
    with pytest.raises(ConfigError, match="cutoff_hz"):
        Augment({**augment_off, "cutoff_hz": [3000, 9000]}, 16000)  # above the Nyquist frequency
    with pytest.raises(ConfigError, match="narrowband_prob"):
        Augment({**augment_off, "narrowband_prob": 1.5}, 16000)


def test_spoken_digits_pads_training_strings_only(
    speech_cache: Path, tiny_digits: Callable[..., dict], augment_off: dict
) -> None:
    from engine_speech.digits import SpokenDigits

    params = {**tiny_digits(speech_cache, "strings", n=20, n_eval=10), **augment_off, "lowpass_prob": 0.0}
    params.update(narrowband_prob=0.0, gain_db=[0.0, 0.0])
    plain = SpokenDigits(**params, augment=False).datasets()
    padded = SpokenDigits(**params, pad_seconds=[0.2, 0.2]).datasets()
    frames = lambda ds: ds[0][0].shape[-1]  # noqa: E731
    assert frames(padded["train"]) - frames(plain["train"]) in (39, 40, 41)  # 2 x 0.2 s at a 10 ms hop
    assert frames(padded["test"]) == frames(plain["test"])  # evaluation is not augmented


def test_keyword_spotting_trains_with_bandwidth_level_and_silence_variation() -> None:
    import engine

    data = engine.plan(engine.compose("speech/digits-kws")).config["data"]
    assert data["augment"] and data["lowpass_prob"] > 0 and data["narrowband_prob"] > 0
    assert data["gain_db"][0] < data["gain_db"][1] and data["pad_seconds"][1] > 0
    assert data["festival_voices"] == ["ked_diphone"] and data["festival_share"] == 0.2  # a second synthesiser


def test_recognition_keeps_the_augmentation_its_heldout_target_was_measured_with() -> None:
    import engine

    data = engine.plan(engine.compose("speech/digits-asr")).config["data"]
    assert data["augment"] and data["lowpass_prob"] > 0 and data["narrowband_prob"] > 0  # flite's 8 kHz voices
    assert data["gain_db"] == [0.0, 0.0] and data["pad_seconds"] == [0.0, 0.0] and data["eq_prob"] == 0
    assert data["festival_voices"] == ["ked_diphone"] and data["festival_share"] == 0.2
    assert data["num_utterances"] * (1 - data["festival_share"]) >= 2500  # as many espeak-ng strings as before
