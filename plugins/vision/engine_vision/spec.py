"""Validation of the ``data.augment`` mapping, torch-free (used at ``--dry-run`` time too).

`check_image_data` and `check_detection_data` are the vision data sources' plan-time
checks (``Component(check=...)``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from engine import ConfigError, did_you_mean

#: key -> description (shown in errors and docs).
AUGMENT_KEYS: dict[str, str] = {
    "rotate": "max rotation in degrees (number >= 0)",
    "shift": "max translation as a fraction of the size (0 <= f < 1)",
    "scale": "zoom range [lo, hi] (0 < lo <= hi), or s for [1-s, 1+s]",
    "shear": "max shear in degrees (0 <= d < 90)",
    "hflip": "mirror left-right with probability 1/2 (bool)",
    "vflip": "mirror top-bottom with probability 1/2 (bool)",
    "noise": "std of added Gaussian noise, normalised units (number >= 0)",
    "erase": "blank a random square of side up to this fraction (0 <= f <= 1)",
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked(
    spec: Any, where: str, keys: dict[str, str], example: str, label: str, valid: Callable[[str, Any], bool]
) -> dict[str, Any]:
    """``spec`` as a plain dict once every key is one of ``keys`` and ``valid(key, value)``; ConfigError otherwise."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where} must be a mapping of augmentations, got {spec!r}",
            hint=f"for example {example.format(where=where)}; keys: {', '.join(keys)}",
        )
    for key, value in spec.items():
        if key not in keys:
            raise ConfigError(
                f"unknown augmentation '{where}.{key}'{did_you_mean(str(key), keys)}",
                hint=f"{label}: {', '.join(keys)}",
            )
        if not valid(key, value):
            raise ConfigError(f"{where}.{key} must be {keys[key]}, got {value!r}")
    return dict(spec)


def _flip_or_scale(key: str, value: Any) -> bool:
    """The flips (a bool) and ``scale`` (s, or a range [lo, hi] with 0 < lo <= hi), shared by both kinds."""
    if key in ("hflip", "vflip"):
        return isinstance(value, bool)
    if _number(value):
        return 0 <= value < 1
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_number(v) for v in value)
        and 0 < value[0] <= value[1]
    )


def _classify_ok(key: str, value: Any) -> bool:
    if key in ("hflip", "vflip", "scale"):
        return _flip_or_scale(key, value)
    if key == "shift":
        return _number(value) and 0 <= value < 1
    if key == "erase":
        return _number(value) and 0 <= value <= 1
    if key == "shear":
        return _number(value) and 0 <= value < 90
    return _number(value) and value >= 0  # rotate, noise


def check_augment(spec: Any, where: str = "data.augment") -> dict[str, Any]:
    """Return ``spec`` as a plain dict after checking every key and value; ConfigError otherwise."""
    example = "{where}.rotate=10 {where}.shift=0.1"
    return _checked(spec, where, AUGMENT_KEYS, example, "augmentations", _classify_ok)


#: Box-aware augmentation of the detection sources: key -> description.
DETECT_AUGMENT_KEYS: dict[str, str] = {
    "hflip": "mirror left-right with probability 1/2, boxes too (bool)",
    "vflip": "mirror top-bottom with probability 1/2, boxes too (bool)",
    "scale": "zoom range [lo, hi] (0 < lo <= hi), or s for [1-s, 1+s]; below 1 the image shrinks onto a canvas",
    "crop": "crop a window of side f..1 of the image (0 < f <= 1) and resize it back; boxes clipped",
    "min_visible": "drop a box when less than this fraction of its area stays in the image (0 <= f <= 1)",
    "brightness": "brightness factor in [1-b, 1+b] (0 <= b < 1)",
    "contrast": "contrast factor in [1-c, 1+c] (0 <= c < 1)",
    "saturation": "saturation factor in [1-s, 1+s] (0 <= s < 1)",
    "noise": "std of added Gaussian noise, on the [0, 1] pixel scale (number >= 0)",
}


def _detect_ok(key: str, value: Any) -> bool:
    if key in ("hflip", "vflip", "scale"):
        return _flip_or_scale(key, value)
    if key == "crop":
        return _number(value) and 0 < value <= 1
    if key == "min_visible":
        return _number(value) and 0 <= value <= 1
    if key == "noise":
        return _number(value) and value >= 0
    return _number(value) and 0 <= value < 1  # brightness, contrast, saturation


def check_detect_augment(spec: Any, where: str = "data.augment") -> dict[str, Any]:
    """``spec`` of a detection source's augmentation as a plain dict, checked; ConfigError otherwise."""
    example = "{where}.hflip=true {where}.scale=[0.8,1.2]"
    return _checked(spec, where, DETECT_AUGMENT_KEYS, example, "detection augmentations", _detect_ok)


def check_image_data(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """``vision.digits`` / ``vision.image_folder``: ``data.augment`` checked before anything is built; shipped
    weights trained on another split of the same data are warned about (their training images are in this test)."""
    check_augment(values.get("augment"), f"{where}.augment")
    model = config.get("model") or {}
    if model.get("weights") == "digits" and str(config.get("data", {}).get("name")) in ("vision.digits", "digits"):
        split = digits_weights_split()
        differs = {k: (v, values.get(k)) for k, v in split.items() if k in values and values.get(k) != v}
        if differs:
            theirs = " ".join(f"{where}.{k}={a}" for k, (a, _) in differs.items())
            ours = " ".join(f"{where}.{k}={b}" for k, (_, b) in differs.items())
            print(
                f"warning: model.weights=digits were trained on the digits split of {theirs}; this run splits with "
                f"{ours}, so its val/test images were partly in their training split and its figures overstate "
                f"(set {theirs} to test them on images they never saw)",
                file=sys.stderr,
            )


def digits_weights_split() -> dict[str, Any]:
    """The data split the shipped ``digits`` weights were trained on, from their file's metadata (torch-free):
    ``split`` when recorded (bench/make_weights.py), else the ``seed=N`` of the recipe they record."""
    import json
    import re
    import struct
    from importlib.resources import files

    raw = (files("engine_vision") / "weights" / "cnn-digits.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    about = json.loads(header.get("__metadata__", {}).get("engine", "{}"))
    if "split" in about:
        return dict(about["split"])
    seed = re.search(r"\bseed=(\d+)", about.get("recipe", ""))
    return {"seed": int(seed.group(1))} if seed else {}


def check_detection_data(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The detection sources: their box-aware ``data.augment`` checked before anything is built."""
    check_detect_augment(values.get("augment"), f"{where}.augment")
