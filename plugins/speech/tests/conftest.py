from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One torch thread (engine.testing's ``one_thread``): the CPU is shared, one is faster than two contending."""


@pytest.fixture
def augment_off() -> dict:
    """Augmentation settings with every transform off (a test switches on the one it checks)."""
    return {
        "tempo_range": [1.0, 1.0],
        "vtlp_range": [1.0, 1.0],
        "rt60_range": [0.2, 0.3],
        "reverb_prob": 0.0,
        "noise_prob": 0.0,
        "snr_db": [10, 20],
        "freq_masks": 0,
        "freq_mask_width": 0,
        "time_masks": 0,
        "time_mask_width": 0,
    }


# Tiny spoken-digit data: 2 accents x few variants, a few dozen utterances (synthesised once per session).
TINY_VOICES = {
    "languages": ["en-us", "en-gb-scotland"],
    "train_variants": ["m1", "f1", "m3"],
    "val_variants": ["f2"],
    "test_variants": ["m7"],
    "heldout_languages": ["en-us-nyc"],
    "heldout_variants": ["m8"],
}


def _tiny_digits(cache: Path, mode: str = "words", n: int = 40, n_eval: int = 10) -> dict:
    return {
        "mode": mode,
        "num_utterances": n,
        "num_eval_utterances": n_eval,
        "num_heldout_utterances": n_eval,
        "cache_dir": str(cache),
        **TINY_VOICES,
    }


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(scope="session")
def tiny_digits() -> Callable[..., dict]:
    """``tiny_digits(cache, mode, n, n_eval)``: parameters of a tiny speech.spoken_digits."""
    return _tiny_digits


@pytest.fixture(scope="session")
def tiny_asr_run(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> Path:
    """A briefly trained CTC run on tiny spoken-digit strings (for the transcribe command)."""
    from engine.testing import train_run

    data = _tiny_digits(speech_cache, "strings", n=24, n_eval=6)
    overrides = [
        "task=speech.ctc",
        "model=speech.ctc_asr",
        "model.hidden=32",
        "model.conv_channels=32",
        "model.layers=1",
        "data=speech.spoken_digits",
        *[f"data.{k}={v}".replace("'", "") for k, v in data.items()],
        "data.batch_size=8",
        "trainer.max_steps=3",
    ]
    return train_run(*overrides, root=tmp_path_factory.mktemp("runs"), name="tiny-asr").run_dir
