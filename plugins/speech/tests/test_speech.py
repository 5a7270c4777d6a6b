from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError, EngineError
from engine.testing import run_cli


def write_wav(path: Path, wave, sample_rate: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sample_rate)
    return path


def tone(freq: float, seconds: float, sample_rate: int, channels: int = 1):
    import numpy as np

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.5 * np.sin(2 * math.pi * freq * t)
    return np.stack([x] * channels, 1) if channels > 1 else x


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/low/*.wav and root/high/*.flac: tones of two pitch ranges, mixed rates and channel counts."""
    root = tmp_path_factory.mktemp("tones")
    for i in range(10):
        write_wav(root / "low" / f"{i}.wav", tone(200 + 20 * i, 0.5, 8000), 8000)
        write_wav(root / "high" / f"{i}.flac", tone(2000 + 50 * i, 0.6, 22050, channels=2), 22050)
    return root


# --------------------------------------------------------------------------- conformance


@pytest.fixture(scope="session")
def tone_manifest(tone_folder: Path) -> Path:
    rows = [{"path": f"low/{i}.wav", "transcript": "Low  tone"} for i in range(10)]
    rows += [{"path": str(tone_folder / "high" / f"{i}.flac"), "transcript": "high tone"} for i in range(10)]
    path = tone_folder / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_conformance(
    engine_check, tiny_digits: Callable[..., dict], speech_cache: Path, tone_folder: Path, tone_manifest: Path
) -> None:
    strings = tiny_digits(speech_cache, "strings", n=16, n_eval=4)
    passed = engine_check(
        "speech",
        data_params={
            "speech.spoken_digits": tiny_digits(speech_cache, "words", n=20, n_eval=10),
            "speech.wav_folder": {"path": str(tone_folder)},
            "speech.transcribed": {"manifest": str(tone_manifest)},
        },
        task_overrides={
            "speech.ctc": [
                "data=speech.spoken_digits",
                *[f"data.{k}={v}".replace("'", "") for k, v in strings.items()],
                "model=speech.ctc_asr",
                "model.hidden=32",
                "model.conv_channels=32",
            ]
        },
        # The recipes synthesise thousands of utterances: validated and smoke-run on tiny data below.
        skip=("speech/digits-kws", "speech/digits-asr"),
    )
    assert any("task 'speech.ctc' completes fast_dev_run" in p for p in passed)
    assert any("model 'speech.ctc_asr' forward/backward" in p for p in passed)
    assert any("data 'speech.transcribed' builds" in p for p in passed)


@pytest.mark.parametrize(("recipe", "mode"), [("speech/digits-kws", "words"), ("speech/digits-asr", "strings")])
def test_recipes_validate_and_train_on_tiny_data(
    recipe: str, mode: str, tiny_digits: Callable[..., dict], speech_cache: Path, tmp_path: Path
) -> None:
    import engine
    from engine.testing import train_run

    cfg = engine.plan(engine.compose(recipe)).config
    assert cfg["data"]["mode"] == mode and cfg["data"]["num_utterances"] >= 2000
    tiny = [f"data.{k}={v}".replace("'", "") for k, v in tiny_digits(speech_cache, mode, n=16, n_eval=4).items()]
    summary = train_run(*tiny, "trainer.fast_dev_run=true", root=tmp_path, recipe=recipe).summary
    assert summary["status"] == "completed"
    key = "test/accuracy" if mode == "words" else "test/wer"
    assert key in summary["metrics"]


def test_plugin_module_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, engine_speech.plugin; print('torch' in sys.modules, 'soundfile' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- audio and features


def test_resampling_a_sine_matches_the_sine_at_the_new_rate() -> None:
    import torch
    from engine_speech.audio import resample

    for orig, new in ((22050, 16000), (8000, 16000), (44100, 16000)):
        t_in = torch.arange(orig) / orig
        got = resample(torch.sin(2 * math.pi * 1000 * t_in), orig, new)
        assert got.shape == (new,)
        want = torch.sin(2 * math.pi * 1000 * torch.arange(new) / new)
        interior = slice(new // 10, -new // 10)
        assert (got[interior] - want[interior]).abs().max() < 2e-3, (orig, new)


def test_resampling_removes_what_the_new_rate_cannot_hold() -> None:
    import torch
    from engine_speech.audio import resample

    t = torch.arange(22050) / 22050
    aliased = resample(torch.sin(2 * math.pi * 7000 * t), 22050, 8000)  # 7 kHz > 4 kHz Nyquist
    assert aliased[800:-800].pow(2).mean().sqrt() < 0.01


def test_stereo_is_downmixed_and_other_rates_resampled(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from engine_speech.audio import load_audio

    left = tone(440, 0.5, 22050)
    path = write_wav(tmp_path / "st.wav", np.stack([left, np.zeros_like(left)], 1), 22050)
    wave = load_audio(path, 16000)
    assert wave.dim() == 1 and wave.numel() == 8000
    want = 0.25 * torch.sin(2 * math.pi * 440 * torch.arange(8000) / 16000)  # mean of the channels
    assert (wave[800:-800] - want[800:-800]).abs().max() < 2e-3


def test_unreadable_empty_and_missing_audio_fail_clearly(tmp_path: Path) -> None:
    import numpy as np
    from engine_speech.audio import load_audio

    garbage = tmp_path / "bad.wav"
    garbage.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(EngineError, match="cannot read audio file"):
        load_audio(garbage, 16000)
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(EngineError, match="empty"):
        load_audio(empty, 16000)
    with pytest.raises(EngineError, match="not found"):
        load_audio(tmp_path / "nope.wav", 16000)


def test_mel_mfcc_shapes_and_filterbank() -> None:
    import torch
    from engine_speech.features import FeatureExtractor, dct_matrix, mel_filterbank

    fb = mel_filterbank(512, 16000, 40)
    assert fb.shape == (257, 40) and (fb >= 0).all() and (fb.max(0).values > 0.5).all()
    centres = fb.argmax(0)
    assert (centres[1:] > centres[:-1]).all()  # increasing centre frequencies
    d = dct_matrix(40, 40)
    assert torch.allclose(d.T @ d, torch.eye(40), atol=1e-5)
    ex = FeatureExtractor(16000, 40)
    feats = ex(torch.randn(16000))
    assert feats.shape == (40, 101) == (40, ex.num_frames(16000))
    assert abs(float(feats.mean())) < 1e-4 and abs(float(feats.std()) - 1) < 1e-3
    assert FeatureExtractor(16000, 40, n_mfcc=13)(torch.randn(8000)).shape == (13, 51)
    # A 1 kHz tone puts its energy in the mel band around 1 kHz.
    t = torch.arange(16000) / 16000
    band = FeatureExtractor(16000, 40, normalize=False)(torch.sin(2 * math.pi * 1000 * t)).mean(1).argmax()
    assert abs(int(band) - int(torch.argmin((fb.argmax(0) * 31.25 - 1000).abs()))) <= 1


def test_spec_augment_and_noise() -> None:
    import torch
    from engine_speech.features import add_noise, spec_augment

    x = torch.ones(40, 100)
    masked = spec_augment(x, 2, 8, 2, 10, generator=torch.Generator().manual_seed(0))
    assert masked.shape == x.shape and (masked == 0).any() and x.eq(1).all()
    wave = torch.sin(torch.arange(16000) * 0.1)
    noisy = add_noise(wave, 10.0, "pink")
    snr = 10 * math.log10(float(wave.pow(2).mean() / (noisy - wave).pow(2).mean()))
    assert abs(snr - 10) < 0.5


# --------------------------------------------------------------------------- data sources


def test_wav_folder_reads_mixed_rates_and_channels(tone_folder: Path) -> None:
    from engine_speech.files import WavFolder

    src = WavFolder(str(tone_folder), val_fraction=0.2, test_fraction=0.2)
    facts = src.facts
    assert facts["class_names"] == ["high", "low"] and facts["input_shape"] == [1, 40, 101]
    ds = src.datasets()
    assert sum(len(d) for d in ds.values()) == 20 and set(ds) == {"train", "val", "test"}
    x, y = ds["test"][0]
    assert list(x.shape) == facts["input_shape"] and int(y) in (0, 1)
    assert list(src.load_input(tone_folder / "high" / "0.flac").shape) == facts["input_shape"]


def test_wav_folder_bad_files(tmp_path: Path, tone_folder: Path) -> None:
    import shutil
    import warnings

    from engine_speech.files import WavFolder

    with pytest.raises(ConfigError, match="not found"):
        WavFolder(str(tmp_path / "none"))
    root = tmp_path / "folder"
    shutil.copytree(tone_folder, root, ignore=shutil.ignore_patterns("*.jsonl"))
    (root / "low" / "broken.wav").write_bytes(b"garbage")
    with pytest.raises(EngineError, match=r"broken\.wav"):
        WavFolder(str(root)).datasets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = WavFolder(str(root), on_error="skip").datasets()
    assert sum(len(d) for d in ds.values()) == 20 and any("broken.wav" in str(w.message) for w in caught)


def test_manifest_csv_and_jsonl(tmp_path: Path, tone_folder: Path, tone_manifest: Path) -> None:
    from engine_speech.datasets import collate_sequences
    from engine_speech.files import Transcribed

    src = Transcribed(str(tone_manifest))
    assert src.facts["vocabulary"] == sorted(set("low tone high"))
    assert src.facts["vocab_size"] == len(src.facts["vocabulary"]) + 1
    ds = src.datasets()
    (x, xl), (y, yl) = collate_sequences([ds["train"][i] for i in range(4)])
    assert x.shape[:2] == (4, 40) and int(xl.max()) == x.shape[-1] and y.shape[0] == 4 and (y[0, : yl[0]] > 0).all()

    csv_file = tmp_path / "m.csv"
    lines = ["file,text,split"] + [f"{tone_folder}/low/{i}.wav,low,{'train' if i < 8 else 'test'}" for i in range(10)]
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = Transcribed(str(csv_file), path_column="file", text_column="text")
    assert {k: len(v) for k, v in src.datasets().items()} == {"train": 8, "test": 2}

    with pytest.raises(ConfigError, match=r"line 2: character\(s\) 'w' outside the vocabulary"):
        Transcribed(str(csv_file), path_column="file", text_column="text", vocabulary="lo ")
    with pytest.raises(ConfigError, match="no column 'transcript'"):
        Transcribed(str(csv_file), path_column="file")
    with pytest.raises(ConfigError, match="not found"):
        Transcribed(str(tmp_path / "missing.csv"))


def test_spoken_digits_splits_by_voice(tiny_digits: Callable[..., dict], speech_cache: Path) -> None:
    from engine_speech.digits import SpokenDigits

    src = SpokenDigits(**tiny_digits(speech_cache, "words", n=20, n_eval=10))
    voices = {s: {u.voice for u in src.utterances(s)[0]} for s in ("train", "val", "test")}
    assert voices["train"].isdisjoint(voices["test"]) and voices["train"].isdisjoint(voices["val"])
    assert {v.split("+")[1] for v in voices["test"]} == set(["m7"])
    ds = src.datasets()
    x, y = ds["train"][3]
    assert list(x.shape) == src.facts["input_shape"] and int(y) == 3
    with pytest.raises(ConfigError, match="held-out voices"):
        SpokenDigits(train_variants=["m1", "f3"], test_variants=["f3"])


def test_unknown_voice_and_missing_espeak(
    tiny_digits: Callable[..., dict], speech_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_speech import synth
    from engine_speech.digits import SpokenDigits

    with pytest.raises(ConfigError, match="no variant 'andy'"):
        SpokenDigits(**{**tiny_digits(speech_cache), "train_variants": ["andy"]}).datasets()
    with pytest.raises(ConfigError, match="no language 'en-mars'"):
        synth.check_voices(["en-mars+m1"], "test")
    monkeypatch.setattr(synth.shutil, "which", lambda *a, **k: None)
    with pytest.raises(EngineError, match="espeak-ng is not installed") as info:
        synth.synthesize(synth.Utterance("one", "en-us"), speech_cache / "x.wav")
    assert "apt-get install espeak-ng" in info.value.hint


def test_synthesise_words_into_tmp(tmp_path: Path) -> None:
    from engine_speech.audio import load_audio
    from engine_speech.synth import Utterance, generate

    utts = [Utterance("seven", "en-us+f3", 150, 40), Utterance("two", "en-gb-scotland+m2", 180, 60)]
    paths = generate(utts, tmp_path, workers=2)
    assert all(p.is_file() and p.parent.parent == tmp_path / "espeak" for p in paths)
    wave = load_audio(paths[0], 16000)
    assert 0.2 < wave.numel() / 16000 < 2 and wave.abs().max() > 0.05
    assert generate(utts, tmp_path) == paths  # cached: same files, nothing synthesised again


def test_text_encoding_and_decoding() -> None:
    import torch
    from engine_speech.models import beam_decode, decode, greedy_decode
    from engine_speech.text import encode_text

    vocab = sorted(set("one two"))
    assert encode_text("  ONE   two ", vocab) == [vocab.index(c) + 1 for c in "one two"]
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        encode_text("three", vocab)
    # frames: o o _ n e e -> "one"; blanks split the double letter of "oo"
    ids = [vocab.index(c) + 1 for c in "one"]
    path = [ids[0], ids[0], 0, ids[1], ids[2], ids[2], 0, ids[0], 0, ids[0]]
    lp = torch.full((1, len(path), len(vocab) + 1), -10.0)
    for t, c in enumerate(path):
        lp[0, t, c] = 0.0
    lp = lp.log_softmax(-1)
    lengths = torch.tensor([len(path)])
    assert greedy_decode(lp, lengths) == beam_decode(lp, lengths, 4) == [[*ids, ids[0], ids[0]]]
    assert decode(lp, lengths, vocab) == ["oneoo"] == decode(lp, lengths, vocab, beam_width=3)


# --------------------------------------------------------------------------- config checks and commands


def test_task_and_data_mismatch_is_one_line(cli: Any, tone_manifest: Path) -> None:
    res = cli("run", "task=speech.ctc", "model=speech.ctc_asr", "data=speech.spoken_digits", "--dry-run")
    assert res.returncode == 2 and "data.mode=strings" in res.stderr + res.stdout and "Traceback" not in res.stderr
    res = cli("run", "speech/digits-asr", "task=supervised", "model=speech.kws_cnn", "--dry-run")
    assert res.returncode == 2 and "task=speech.ctc" in res.stderr + res.stdout
    transcribed = ["data=speech.transcribed", f"data.manifest={tone_manifest}"]
    kws = ["model=speech.kws_cnn", "model.input_shape=[1,40,32]", "model.num_classes=2"]
    res = cli("run", *transcribed, "task=supervised", *kws, "--dry-run")
    assert res.returncode == 2 and "speech.transcribed yields transcribed sequences" in res.stderr


def test_transcribed_speech_implies_the_ctc_task(tone_manifest: Path) -> None:
    import engine

    config = engine.compose(None, overrides=["data=speech.transcribed", f"data.manifest={tone_manifest}"])
    assert engine.plan(config).config["task"]["name"] == "speech.ctc"
    digits = ["data=speech.spoken_digits", "data.mode=strings", "task=speech.ctc"]
    assert engine.plan(engine.compose(None, overrides=digits)).config["model"]["name"] == "speech.ctc_asr"


def test_transcribe_command(tiny_asr_run: Path, tmp_path: Path, cli: Any) -> None:
    import numpy as np
    from engine_speech.synth import Utterance, synthesize

    wav = synthesize(Utterance("four two", "en-us+m7", 160, 50), tmp_path / "fresh.wav")
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([tone(300, 0.8, 44100)] * 2, 1), 44100)
    res = cli("transcribe", str(tiny_asr_run), str(wav), str(stereo))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(wav), str(stereo)]
    assert all(set(ln.split("\t")[1]) <= set(" efghinorstuvwxz") for ln in lines)  # digit-word characters only

    res = cli("transcribe", str(tiny_asr_run), str(tmp_path / "missing.wav"))
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr
    assert "--beam-width" in run_cli("transcribe", "--help").stdout  # the installed command

    from engine_speech.cli import transcribe_files

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    with pytest.raises(EngineError, match="cannot read audio file"):
        transcribe_files(str(tiny_asr_run), [str(bad)])
    with pytest.raises(EngineError, match="not a run directory"):
        transcribe_files(str(tmp_path), [str(wav)])
    with pytest.raises(EngineError, match="beam-width"):
        transcribe_files(str(tiny_asr_run), [str(wav)], beam_width=0)
    assert len(transcribe_files(str(tiny_asr_run), [str(wav)], beam_width=4)) == 1


@pytest.mark.parametrize("norm", ["group", "none"])
def test_models_without_batchnorm_on_request(norm: str) -> None:
    import torch
    from engine_speech.models import CTCASR, KWSCNN

    kws = KWSCNN([1, 40, 32], num_classes=10, width=8, stages=2, norm=norm)
    asr = CTCASR(vocab_size=12, n_mels=40, conv_channels=16, hidden=8, layers=1, norm=norm)
    for model in (kws, asr):
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules()) == (norm == "group")
    assert kws(torch.randn(1, 1, 40, 32)).shape == (1, 10)  # a batch of one: per-sample statistics


def test_leading_silence_is_trimmed_for_inference_as_in_training(tiny_asr_run: Path, tmp_path: Path) -> None:
    """Issue 37 item 1: transcribe/predict/serve prepare audio as the splits do (silence trimmed)."""
    import numpy as np
    import soundfile as sf
    from engine_speech.audio import load_audio, trim_silence
    from engine_speech.cli import transcribe_files
    from engine_speech.datasets import prepare_input
    from engine_speech.synth import Utterance, synthesize

    from engine.runs import open_run

    wav = synthesize(Utterance("three four two", "en-us+m7", 160, 50), tmp_path / "speech.wav")
    speech, rate = sf.read(str(wav), dtype="float32")
    padded = write_wav(tmp_path / "padded.wav", np.concatenate([np.zeros(rate // 4, "float32"), speech]), rate)
    facts = open_run(tiny_asr_run).facts
    sr = int(facts["sample_rate"])
    by_hand = write_wav(tmp_path / "trimmed.wav", trim_silence(load_audio(padded, sr), sr).numpy(), sr)
    x_padded, x_trimmed = (prepare_input(load_audio(f, sr), facts) for f in (padded, by_hand))
    assert x_padded.shape == x_trimmed.shape  # before: 25 more frames of silence for the model
    diff = (x_padded - x_trimmed).abs()
    assert float(diff.mean()) < 0.05 * float(x_padded.std())  # the same frames, but for 16-bit rounding
    texts = [text for _, text in transcribe_files(str(tiny_asr_run), [str(padded), str(by_hand)])]
    assert texts[0] == texts[1]
