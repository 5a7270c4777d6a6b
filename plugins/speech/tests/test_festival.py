"""festival as a second training synthesiser: synthesis, its parameters, and its share of the training split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine import ConfigError, EngineError


def _f0(wave: object, rate: int) -> float:
    """Pitch (Hz) of the middle of a voiced stretch, by autocorrelation."""
    import torch

    x = wave[wave.numel() // 2 - 1024 : wave.numel() // 2 + 1024]  # type: ignore[index]
    ac = torch.nn.functional.conv1d(x.view(1, 1, -1), x.view(1, 1, -1), padding=x.numel() - 1)[0, 0, x.numel() - 1 :]
    lo, hi = rate // 400, rate // 60
    return rate / (lo + int(ac[lo:hi].argmax()))


def test_festival_speaks_at_the_drawn_pitch_speed_and_level(tmp_path: Path) -> None:
    from engine_speech.audio import load_audio
    from engine_speech.synth import Utterance, generate

    text = "eight six nine five"
    utts = [
        Utterance(text, "ked_diphone", 170, 10, 100, synthesiser="festival"),  # F0 86 Hz
        Utterance(text, "ked_diphone", 170, 80, 100, synthesiser="festival"),  # F0 198 Hz
        Utterance(text, "ked_diphone", 110, 10, 100, synthesiser="festival"),  # slower
        Utterance(text, "ked_diphone", 170, 10, 30, synthesiser="festival"),  # quieter
    ]
    paths = generate(utts, tmp_path, workers=2)
    low, high, slow, quiet = (load_audio(p, 16000) for p in paths)
    assert 70 < _f0(low, 16000) < 110 and 170 < _f0(high, 16000) < 230
    assert 1.3 < slow.numel() / low.numel() < 1.8
    assert 0.2 < float(quiet.abs().max() / low.abs().max()) < 0.4
    assert len({p.name for p in paths}) == 4 and generate(utts, tmp_path) == paths  # cached under distinct keys
    espeak = generate([Utterance(text, "en-us", 170, 10)], tmp_path)[0]
    assert espeak not in paths


def test_festival_share_of_the_training_split_only(speech_cache: Path, tiny_digits: Callable[..., dict]) -> None:
    from engine_speech.digits import SpokenDigits

    params = {**tiny_digits(speech_cache, "words", n=200, n_eval=20), "workers": 2}
    plain = SpokenDigits(**params)
    mixed = SpokenDigits(**params, festival_voices=["ked_diphone"], festival_share=0.3)
    before, labels = plain.utterances("train")
    after, labels_after = mixed.utterances("train")
    spoken = [u for u in after if u.synthesiser == "festival"]
    assert 40 <= len(spoken) <= 80 and {u.voice for u in spoken} == {"ked_diphone"}
    assert labels == labels_after
    for a, b in zip(before, after, strict=True):  # same words, speeds, pitches; espeak's own utterances unchanged
        assert (a.text, a.speed, a.pitch, a.amplitude) == (b.text, b.speed, b.pitch, b.amplitude)
        assert b.synthesiser == "festival" or a == b
    for split in ("val", "test", "heldout"):
        assert mixed.utterances(split) == plain.utterances(split)
    small = SpokenDigits(**{**params, "num_utterances": 20}, festival_voices=["ked_diphone"], festival_share=0.5)
    data = small.datasets()
    assert len(data["train"]) == 20 and len(data["test"]) == 20


def test_festival_mistakes_are_one_clear_line(
    speech_cache: Path, tiny_digits: Callable[..., dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_speech import synth
    from engine_speech.digits import SpokenDigits

    with pytest.raises(ConfigError, match="festival_voices is empty"):
        SpokenDigits(**tiny_digits(speech_cache), festival_share=0.2)
    with pytest.raises(ConfigError, match="festival has no voice 'kal_dipone'") as info:
        SpokenDigits(**tiny_digits(speech_cache), festival_voices=["kal_dipone"], festival_share=0.2).datasets()
    assert "ked_diphone" in info.value.hint
    monkeypatch.setattr(synth.shutil, "which", lambda *a, **k: None)
    with pytest.raises(EngineError, match="festival is not installed") as missing:
        synth.synthesize(synth.Utterance("one", "ked_diphone", synthesiser="festival"), speech_cache / "y.wav")
    assert "apt-get install festival festvox-kdlpc16k" in missing.value.hint


def test_festival_texts_are_spoken_never_run(tmp_path: Path) -> None:
    from engine_speech.synth import Utterance, synthesize

    mark = tmp_path / "ran"
    text = f'one") (system "touch {mark}") ("two \\ three'  # a quote and a backslash: still one string to say
    wav = synthesize(Utterance(text, "ked_diphone", synthesiser="festival"), tmp_path / "said.wav")
    assert wav.stat().st_size > 10_000 and not mark.exists()
    with pytest.raises(EngineError, match="festival voice names are letters"):
        synthesize(Utterance("one", f'ked_diphone) (system "touch {mark}"', synthesiser="festival"), tmp_path / "x.wav")
    assert not mark.exists()
