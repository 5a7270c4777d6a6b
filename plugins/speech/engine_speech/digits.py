"""``speech.spoken_digits``: digits spoken by espeak-ng voices (and festival ones in training), split by voice."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from torch.utils.data import Dataset

from engine import ConfigError
from engine_speech.audio import load_audio
from engine_speech.datasets import collate_sequences
from engine_speech.source import SpeechSource, feature_params
from engine_speech.synth import (
    DIGIT_WORDS,
    Utterance,
    check_distinct_voices,
    check_festival_voices,
    check_voices,
    generate,
)
from engine_speech.text import encode_text

# Every English espeak-ng language but the two held-out accents (West Midlands, New York City).
LANGUAGES = ["en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan"]
HELDOUT_LANGUAGES = ["en-gb-x-gbcwmd", "en-us-nyc"]
VAL_VARIANTS = ["m5", "f3", "max", "Annie", "rob", "klatt5", "grandpa"]
TEST_VARIANTS = ["m7", "f5", "Alex", "steph", "klatt3"]
HELDOUT_VARIANTS = ["m8", "aunty", "Gene2", "iven3", "klatt4", "Mike", "quincy", "steph2", "edward", "robosoft3"]
# Every other espeak-ng variant (espeak-ng 1.51, `espeak-ng --voices=variant`) that sounds like itself: 76 training
# speakers. Left out, as their audio equals another's (`check_distinct_voices`): fast (only a speed, which the
# utterances set), klatt6 and caleb (klatt's audio). "Mr serious" is one variant file, with a space.
TRAIN_VARIANTS = [
    *(
        "m1 m2 m3 m4 m6 f1 f2 f4 klatt klatt2 Andy linda john adam Alicia Andrea AnxiousAndy Demonic Denis "
        "Diogo Gene Henrique Hugo Jacky Lee Marco Mario Michael Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm "
        "Tweaky UniRobot anika anikaRobot announcer antonio belinda benjamin boris croak david ed edward2 "
        "grandma gustave iven iven2 iven4 kaukovalta marcelo michel miguel norbert pablo paul pedro robert robosoft "
        "robosoft2 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph3 travis victor whisper "
        "whisperf zac"
    ).split(),
    "Mr serious",
]


def _draw(rng: random.Random, inner: list[int], outer: list[int] | None) -> int:
    """A value of ``inner``; with ``outer``, a value of ``outer`` outside ``inner`` (held-out ranges)."""
    if outer is None:
        return rng.randint(*inner)
    below = list(range(outer[0], min(inner[0], outer[1] + 1)))
    above = list(range(max(inner[1] + 1, outer[0]), outer[1] + 1))
    return rng.choice(below + above) if below or above else rng.randint(*outer)


class SpokenDigits(SpeechSource):
    """Spoken digits synthesised with espeak-ng, split by voice: no test voice is heard in training.

    A voice is ``language+variant``: every language (accent) is combined with the variants
    (speakers) of each split, and the variant lists are disjoint, so validation and test voices are
    new speakers. Speed, pitch and amplitude are drawn per utterance. The ``heldout`` split goes
    further: accents (``heldout_languages``) and speakers (``heldout_variants``) used by no other
    split, at speeds and pitches outside the training ranges (drawn from ``heldout_speed_range`` /
    ``heldout_pitch_range`` minus ``speed_range`` / ``pitch_range``). ``words`` mode says one digit
    ("seven") per utterance for keyword spotting (10 classes); ``strings`` mode says
    ``min_digits``..``max_digits`` random digits ("three one four") for speech recognition.

    With ``festival_share`` > 0, that share of the *training* utterances is spoken by ``festival_voices``
    instead (Debian's festival: recorded diphones of a real speaker, where espeak-ng makes every sound by rule),
    at the same drawn speeds, pitches and amplitudes. Validation, test and held-out stay espeak-ng.

    Args:
        mode: words (classification, clips) or strings (recognition, sequences).
        num_utterances: training utterances.
        num_eval_utterances: utterances in each of validation and test.
        num_heldout_utterances: utterances of the held-out accent/variant split (0: none).
        min_digits: shortest digit string (strings mode).
        max_digits: longest digit string (strings mode).
        languages: espeak-ng languages (accents) of the train, val and test splits.
        train_variants: espeak-ng variants (speakers) of the training split.
        val_variants: variants of the validation split (disjoint from the others).
        test_variants: variants of the test split (disjoint from the others).
        heldout_languages: accents of the held-out split only (disjoint from languages).
        heldout_variants: variants of the held-out split only (disjoint from the others).
        speed_range: [low, high] speaking rate, words per minute.
        pitch_range: [low, high] pitch, 0-99.
        amplitude_range: [low, high] espeak-ng amplitude (0-200, 100 is its default).
        heldout_speed_range: held-out speeds come from this range outside speed_range.
        heldout_pitch_range: held-out pitches come from this range outside pitch_range.
        festival_voices: festival voices for a share of the training utterances (``festival -b "(print
            (voice.list))"`` lists them; Debian's festvox-kdlpc16k gives ked_diphone).
        festival_share: share of the training utterances spoken by festival_voices (0: espeak-ng only).
        clip_seconds: clip length in words mode.
        seed: seed of the texts, voices, speeds and pitches (and, with the run's seed, the augmentation).
        cache_dir: where synthesised WAVs are cached (default $ENGINE_CACHE_DIR/speech, ~/.cache/engine/speech).
        workers: parallel espeak-ng processes when synthesising.
        sample_rate: audio is resampled to this rate (Hz) before features.
        n_mels: mel filters of the log-mel features.
        win_ms: STFT window (Hann), milliseconds.
        hop_ms: STFT hop (frame shift), milliseconds.
        n_mfcc: 0 for log-mel features, else keep this many MFCCs (DCT of the log-mel).
        augment: augment the training split (tempo, vocal-tract length, reverb, bandwidth, level, silence or time
            shift, noise, SpecAugment).
        tempo_range: [low, high] speed-perturbation factor (resampling: tempo and pitch together); [1, 1] is off.
        vtlp_range: [low, high] vocal-tract-length warp of the frequency axis; [1, 1] is off.
        reverb_prob: probability of a synthetic room (exponentially decaying noise impulse response).
        rt60_range: [low, high] reverberation time of that room, seconds.
        noise_prob: probability of adding white or pink noise to a training utterance.
        snr_db: [low, high] signal-to-noise ratio range of that noise, dB.
        eq_prob: probability of a random spectral envelope (another voice source's tilt and resonances; 0: off).
        eq_db: that envelope's gains are drawn within -eq_db..+eq_db dB at 6 points equally spaced in mel.
        lowpass_prob: probability of a low-pass at a cut-off drawn from cutoff_hz (another voice's bandwidth).
        cutoff_hz: [low, high] cut-off of that low-pass, Hz (at most sample_rate / 2).
        narrowband_prob: probability of an 8 kHz round trip (resampled to 8 kHz and back: nothing above 4 kHz).
        gain_db: [low, high] level change, dB, saturating at full scale; [0, 0] is off.
        pad_seconds: [low, high] leading and trailing silence added to a training string (each drawn), seconds.
        freq_masks: SpecAugment frequency masks per training utterance.
        freq_mask_width: widest frequency mask (mel bands).
        time_masks: SpecAugment time masks per training utterance.
        time_mask_width: widest time mask (frames; at most 20 % of the utterance).
    """

    def __init__(
        self,
        mode: Literal["words", "strings"] = "words",
        num_utterances: Annotated[int, Ge(1)] = 3000,
        num_eval_utterances: Annotated[int, Ge(0)] = 500,
        num_heldout_utterances: Annotated[int, Ge(0)] = 500,
        min_digits: Annotated[int, Ge(1)] = 3,
        max_digits: Annotated[int, Ge(1)] = 6,
        languages: list[str] = LANGUAGES,
        train_variants: list[str] = TRAIN_VARIANTS,
        val_variants: list[str] = VAL_VARIANTS,
        test_variants: list[str] = TEST_VARIANTS,
        heldout_languages: list[str] = HELDOUT_LANGUAGES,
        heldout_variants: list[str] = HELDOUT_VARIANTS,
        speed_range: list[int] = [110, 240],  # noqa: B006
        pitch_range: list[int] = [10, 90],  # noqa: B006
        amplitude_range: list[int] = [60, 180],  # noqa: B006
        heldout_speed_range: list[int] = [85, 290],  # noqa: B006
        heldout_pitch_range: list[int] = [0, 99],  # noqa: B006
        festival_voices: list[str] = [],  # noqa: B006
        festival_share: Annotated[float, Ge(0), Le(1)] = 0.0,
        clip_seconds: Annotated[float, Gt(0)] = 1.0,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        cache_dir: str | None = None,
        workers: Annotated[int, Ge(0)] = 2,
        sample_rate: Annotated[int, Ge(1)] = 16000,
        n_mels: Annotated[int, Ge(1)] = 40,
        win_ms: Annotated[float, Gt(0)] = 25.0,
        hop_ms: Annotated[float, Gt(0)] = 10.0,
        n_mfcc: Annotated[int, Ge(0)] = 0,
        augment: bool = True,
        tempo_range: list[float] = [0.85, 1.15],  # noqa: B006
        vtlp_range: list[float] = [0.9, 1.1],  # noqa: B006
        reverb_prob: Annotated[float, Ge(0), Le(1)] = 0.3,
        rt60_range: list[float] = [0.1, 0.6],  # noqa: B006
        noise_prob: Annotated[float, Ge(0), Le(1)] = 0.5,
        snr_db: list[float] = [5.0, 30.0],  # noqa: B006
        eq_prob: Annotated[float, Ge(0), Le(1)] = 0.0,
        eq_db: Annotated[float, Ge(0), Le(30)] = 10.0,
        lowpass_prob: Annotated[float, Ge(0), Le(1)] = 0.3,
        cutoff_hz: list[float] = [2500.0, 7000.0],  # noqa: B006
        narrowband_prob: Annotated[float, Ge(0), Le(1)] = 0.2,
        gain_db: list[float] = [-20.0, 6.0],  # noqa: B006
        pad_seconds: list[float] = [0.0, 0.3],  # noqa: B006
        freq_masks: Annotated[int, Ge(0)] = 2,
        freq_mask_width: Annotated[int, Ge(0)] = 6,
        time_masks: Annotated[int, Ge(0)] = 2,
        time_mask_width: Annotated[int, Ge(0)] = 8,
    ) -> None:
        self._setup(feature_params(locals()))
        if num_utterances < 1 or num_eval_utterances < 0 or num_heldout_utterances < 0:
            raise ConfigError("num_utterances must be >= 1, num_eval_utterances and num_heldout_utterances >= 0")
        if not 1 <= min_digits <= max_digits:
            raise ConfigError(f"need 1 <= min_digits <= max_digits, got {min_digits}..{max_digits}")
        for name, rng, lo, hi in (
            ("speed_range", speed_range, 80, 450),
            ("heldout_speed_range", heldout_speed_range, 80, 450),
            ("pitch_range", pitch_range, 0, 99),
            ("heldout_pitch_range", heldout_pitch_range, 0, 99),
            ("amplitude_range", amplitude_range, 0, 200),
        ):
            if len(rng) != 2 or not lo <= rng[0] <= rng[1] <= hi:
                raise ConfigError(f"{name} must be [low, high] within {lo}..{hi}, got {rng}")
        if festival_share > 0 and not festival_voices:
            raise ConfigError(
                f"festival_share is {festival_share} but festival_voices is empty",
                hint="name festival voices, e.g. data.festival_voices=[ked_diphone], or set data.festival_share=0",
            )
        if clip_seconds <= 0:
            raise ConfigError(f"clip_seconds must be positive, got {clip_seconds}")
        splits = {"train": train_variants, "val": val_variants, "test": test_variants, "heldout": heldout_variants}
        if not languages or not train_variants:
            raise ConfigError("spoken_digits needs at least one language and one training variant")
        names = list(splits)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                shared = sorted(set(splits[a]) & set(splits[b]))
                if shared:
                    raise ConfigError(
                        f"variant(s) {', '.join(shared)} appear in both {a}_variants and {b}_variants",
                        hint="held-out voices must not be heard in training: keep the variant lists disjoint",
                    )
        shared = sorted(set(languages) & set(heldout_languages))
        if shared:
            raise ConfigError(
                f"language(s) {', '.join(shared)} appear in both languages and heldout_languages",
                hint="the held-out accents must not be heard in training: keep the language lists disjoint",
            )
        self.mode, self.clip_seconds = mode, clip_seconds
        self.clip_samples = round(clip_seconds * self.sample_rate)
        self.languages, self.heldout_languages = list(languages), list(heldout_languages)
        self.splits = {k: list(v) for k, v in splits.items()}
        self.counts = {
            "train": num_utterances,
            "val": num_eval_utterances,
            "test": num_eval_utterances,
            "heldout": num_heldout_utterances if heldout_languages else 0,
        }
        self.min_digits, self.max_digits = min_digits, max_digits
        self.speed_range, self.pitch_range = list(speed_range), list(pitch_range)
        self.amplitude_range = list(amplitude_range)
        self.heldout_ranges = list(heldout_speed_range), list(heldout_pitch_range)
        self.seed = seed
        self.festival_voices, self.festival_share = list(festival_voices), festival_share  # no voices: share 0
        from engine import cache_dir as engine_cache

        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else engine_cache() / "speech"
        self.workers = workers
        self.vocabulary = sorted(set(" ".join(DIGIT_WORDS)))

    @property
    def facts(self) -> dict[str, Any]:
        asr = {"vocabulary": list(self.vocabulary), "vocab_size": len(self.vocabulary) + 1}
        words = {"lexicon": list(DIGIT_WORDS)}
        if self.mode == "words":
            return {**self._clip_facts(list(DIGIT_WORDS)), **asr, **words}
        return {"problem": "transcription", **asr, **words, "clip_seconds": None, **self._feature_facts()}

    def voices(self, split: str) -> list[str]:
        langs = self.heldout_languages if split == "heldout" else self.languages
        return [f"{lang}+{v}" for v in self.splits[split] for lang in langs]

    def utterances(self, split: str) -> tuple[list[Utterance], list[int]]:
        """The split's utterances (seeded) and their digit labels (words mode) or lengths."""
        rng = random.Random(f"{self.seed}-{split}-{self.mode}")
        voices = self.voices(split)
        rng.shuffle(voices)
        outer = self.heldout_ranges if split == "heldout" else (None, None)
        share = self.festival_share if split == "train" else 0.0
        festival = random.Random(f"{self.seed}-festival-{self.mode}")  # its own draws: espeak's stay as they were
        utts, labels = [], []
        for i in range(self.counts[split]):
            if self.mode == "words":
                label = i % 10
                text = DIGIT_WORDS[label]
            else:
                n = rng.randint(self.min_digits, self.max_digits)
                text = " ".join(DIGIT_WORDS[rng.randrange(10)] for _ in range(n))
                label = n
            speed = _draw(rng, self.speed_range, outer[0])
            pitch = _draw(rng, self.pitch_range, outer[1])
            amplitude = rng.randint(*self.amplitude_range)
            if share and festival.random() < share:
                voice = festival.choice(self.festival_voices)
                utts.append(Utterance(text, voice, speed, pitch, amplitude, synthesiser="festival"))
            else:
                utts.append(Utterance(text, voices[i % len(voices)], speed, pitch, amplitude))
            labels.append(label)
        return utts, labels

    def _build(self) -> dict[str, Dataset]:
        names = [s for s in self.counts if self.counts[s] > 0 and self.splits[s]]
        check_voices([v for s in names for v in self.voices(s)], "data (speech.spoken_digits)")
        check_distinct_voices({s: self.voices(s) for s in names}, self.cache_dir, "data (speech.spoken_digits)")
        if self.festival_share:
            check_festival_voices(self.festival_voices, "data (speech.spoken_digits)")
        plan = {s: self.utterances(s) for s in names}
        everything = [u for utts, _ in plan.values() for u in utts]
        paths = generate(everything, self.cache_dir, self.workers, label="speech.spoken_digits")
        out: dict[str, Dataset] = {}
        start = 0
        for split, (utts, labels) in plan.items():
            waves = [load_audio(p, self.sample_rate) for p in paths[start : start + len(utts)]]
            start += len(utts)
            if self.mode == "words":
                out[split] = self._clip_dataset(waves, labels, split == "train")
            else:
                targets = [encode_text(u.text, self.vocabulary) for u in utts]
                out[split] = self._sequence_dataset(waves, targets, split == "train")
        return out

    @property
    def collate_fn(self) -> Any:  # type: ignore[override]
        return collate_sequences if self.mode == "strings" else None
