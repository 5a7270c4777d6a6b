"""The held-out accent/variant split, seeded augmentation, lexicon decoding and its command-line flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError


def test_heldout_split_is_disjoint_from_training_voices(speech_cache: Path, tiny_digits: Callable[..., dict]) -> None:
    from engine_speech.digits import HELDOUT_LANGUAGES, HELDOUT_VARIANTS, LANGUAGES, TRAIN_VARIANTS, SpokenDigits

    # the defaults: no held-out accent or speaker anywhere else
    assert set(HELDOUT_LANGUAGES).isdisjoint(LANGUAGES) and set(HELDOUT_VARIANTS).isdisjoint(TRAIN_VARIANTS)
    src = SpokenDigits(**tiny_digits(speech_cache, "words", n=20, n_eval=10))
    plan = {s: src.utterances(s)[0] for s in ("train", "val", "test", "heldout")}
    held = {u.voice for u in plan["heldout"]}
    others = {u.voice for s in ("train", "val", "test") for u in plan[s]}
    langs, variants = ({v.split("+")[i] for v in held} for i in (0, 1))
    assert langs == {"en-us-nyc"} and variants == {"m8"} and held.isdisjoint(others)
    assert all(v.split("+")[0] not in langs and v.split("+")[1] not in variants for v in others)
    lo, hi = src.speed_range
    assert all(not lo <= u.speed <= hi for u in plan["heldout"])  # speeds outside the training range
    plo, phi = src.pitch_range
    assert all(not plo <= u.pitch <= phi for u in plan["heldout"])
    assert len(src.datasets()["heldout"]) == 10
    with pytest.raises(ConfigError, match="heldout_languages"):
        SpokenDigits(languages=["en-us", "en"], heldout_languages=["en"])
    with pytest.raises(ConfigError, match="heldout_variants"):
        SpokenDigits(heldout_variants=["m1"])


def test_augmentation_is_seeded_and_off_at_eval(
    speech_cache: Path, tiny_digits: Callable[..., dict], augment_off: dict
) -> None:
    import torch
    from engine_speech.augment import Augment
    from engine_speech.digits import SpokenDigits

    def build(seed: int, mode: str = "words") -> dict:
        torch.manual_seed(seed)  # what seed_everything does before the data is built
        return SpokenDigits(**tiny_digits(speech_cache, mode, n=20, n_eval=10)).datasets()

    for mode in ("words", "strings"):
        a, b, c = build(0, mode), build(0, mode), build(1, mode)
        torch.manual_seed(123)  # the global RNG plays no part
        first = [a["train"][i][0] for i in range(4)]
        torch.manual_seed(456)
        assert all(torch.equal(x, b["train"][i][0]) for i, x in enumerate(first))
        assert not all(torch.equal(x, c["train"][i][0]) for i, x in enumerate(first))
        assert not torch.equal(a["train"][0][0], first[0])  # a second visit is augmented anew
        for split in ("val", "test", "heldout"):  # never augmented: the same features every time
            ds = a[split]
            assert ds.augment is None and torch.equal(ds[0][0], ds[0][0])
    params = augment_off
    off = Augment(params, 16000)
    wave = torch.randn(8000)
    g = off.generator(0)
    assert torch.equal(off.noise(off.perturb(wave, g), g), wave) and off.warp(g) == 1.0
    fast = Augment({**params, "tempo_range": [1.2, 1.25]}, 16000)
    assert abs(fast.perturb(wave, fast.generator(0)).numel() - 8000 / 1.22) < 250  # faster: shorter
    with pytest.raises(ConfigError, match="tempo_range"):
        Augment({**params, "tempo_range": [1.2]}, 16000)


def _posterior(frames: list[dict[str, float]], vocab: list[str]):
    """CTC log-probabilities ``[1, T, V]`` from per-frame {char: prob} ('_' is the blank); the rest share 1e-4."""
    import torch

    lp = torch.full((1, len(frames), len(vocab) + 1), 1e-4)
    for t, frame in enumerate(frames):
        for ch, p in frame.items():
            lp[0, t, 0 if ch == "_" else vocab.index(ch) + 1] = p
    return (lp / lp.sum(-1, keepdim=True)).log()


def test_lexicon_decoder_fixes_near_misses_greedy_does_not() -> None:
    import torch
    from engine_speech.lexicon import NGram, lexicon_decode
    from engine_speech.models import decode
    from engine_speech.synth import DIGIT_WORDS

    vocab = sorted(set(" ".join(DIGIT_WORDS)))
    words = list(DIGIT_WORDS)

    def spell(text: str) -> list[dict[str, float]]:
        return [f for ch in text for f in ({ch: 0.9}, {"_": 0.9})]

    # "five two" whose f sounds a bit like s, then a stray 'o' before "eight", no space before "eight"
    frames = [{"s": 0.55, "f": 0.4}, {"_": 0.9}, *spell("ive two"), {"o": 0.5, "_": 0.45}, *spell("eight")]
    lp = _posterior(frames, vocab)
    lengths = torch.tensor([len(frames)])
    assert decode(lp, lengths, vocab) == ["sive twooeight"]
    assert lexicon_decode(lp, lengths, vocab, words, beam_width=8) == ["five two eight"]
    lm = NGram(words, 2)
    lm.add([["five", "two", "eight"]] * 5)
    assert lexicon_decode(lp, lengths, vocab, words, lm, beam_width=8) == ["five two eight"]
    assert lm.logp([words.index("five")], words.index("two")) > lm.logp([words.index("five")], words.index("six"))
    assert abs(sum(torch.tensor([lm.logp([0], w) for w in [*range(10), lm.eos]]).exp().tolist()) - 1) < 1e-6
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lexicon_decode(lp, lengths, vocab, ["eleven"])


def test_decoder_option_and_errors(tiny_asr_run: Path, tmp_path: Path, cli: Any) -> None:
    from engine_speech.cli import transcribe_files
    from engine_speech.synth import Utterance, synthesize

    wav = synthesize(Utterance("four two", "en-us+m7", 160, 50), tmp_path / "fresh.wav")
    res = cli("transcribe", str(tiny_asr_run), str(wav), "--decoder", "lexicon", "--beam-width", "4")
    assert res.returncode == 0, res.stderr
    line = res.stdout.rstrip("\n")  # "FILE<TAB>transcript"; a 3-step model may hear nothing (empty transcript)
    text = line.split("\t", 1)[1] if "\t" in line else ""
    assert set(text.split()) <= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    res = cli("transcribe", str(tiny_asr_run), str(wav), "--decoder", "lexicn")
    assert res.returncode == 2 and "unknown decoder 'lexicn'" in res.stderr and "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.strip() and "hint" not in ln]) == 1
    assert len(transcribe_files(str(tiny_asr_run), [str(wav)], decoder="beam")) == 1
    res = cli("run", "speech/digits-asr", "task.decoder=lexicn", "--dry-run")
    assert res.returncode == 2 and "lexicn" in res.stderr + res.stdout and "Traceback" not in res.stderr


def test_voices_espeak_replaces_by_its_default_are_refused(speech_cache: Path) -> None:
    """Issue 37 item 2: espeak-ng falls back silently; voices are told apart by their audio."""
    from engine_speech.digits import TRAIN_VARIANTS
    from engine_speech.synth import available_voices, check_distinct_voices, check_voices

    _, variants = available_voices()
    assert "Mr serious" in variants and "Mr" not in variants  # the variant file's name has a space
    with pytest.raises(ConfigError, match="no variant 'Mr'"):
        check_voices(["en+Mr"], "data")
    check_voices(["en+Mr serious"], "data")
    refused = {
        r"ignores variant 'fast' in voice 'en-us\+fast'": {"train": ["en-us+m1", "en-us+fast"]},
        r"ignores variant 'm3' in voice 'en-gb\+m3'": {"train": ["en-us+m1"], "heldout": ["en-gb+m3"]},
        r"'en-us\+caleb' \(train\) sounds exactly like 'en-us\+klatt' \(train\)": {
            "train": ["en-us+klatt", "en-us+caleb"]
        },
        r"'en-us\+klatt6' \(test\) sounds exactly like 'en-us\+klatt' \(train\)": {
            "test": ["en-us+klatt6"],
            "train": ["en-us+klatt"],
        },
    }
    for message, splits in refused.items():
        with pytest.raises(ConfigError, match=message):
            check_distinct_voices(splits, speech_cache, "data")
    check_distinct_voices({"train": ["en-us+m1", "en-us+klatt"], "test": ["en-us-nyc+m3"]}, speech_cache, "data")
    assert not {"Mr", "fast", "klatt6", "caleb"} & set(TRAIN_VARIANTS)


@pytest.mark.slow
def test_default_voices_all_sound_different(speech_cache: Path) -> None:
    """Every default voice of every split produces its own audio (about 550 short syntheses, cached)."""
    from engine_speech.digits import SpokenDigits
    from engine_speech.synth import check_distinct_voices

    src = SpokenDigits(cache_dir=str(speech_cache))
    check_distinct_voices({s: src.voices(s) for s in src.splits}, speech_cache, "data")
