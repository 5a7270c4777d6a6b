"""Validation of the ``data.augment`` mapping, torch-free (used at ``--dry-run`` time too)."""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError, did_you_mean

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


def check_augment(spec: Any, where: str = "data.augment") -> dict[str, Any]:
    """Return ``spec`` as a plain dict after checking every key and value; ConfigError otherwise."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where} must be a mapping of augmentations, got {spec!r}",
            hint=f"for example {where}.rotate=10 {where}.shift=0.1; keys: {', '.join(AUGMENT_KEYS)}",
        )
    for key, value in spec.items():
        if key not in AUGMENT_KEYS:
            raise ConfigError(
                f"unknown augmentation '{where}.{key}'{did_you_mean(str(key), AUGMENT_KEYS)}",
                hint=f"augmentations: {', '.join(AUGMENT_KEYS)}",
            )
        ok = True
        if key in ("hflip", "vflip"):
            ok = isinstance(value, bool)
        elif key == "scale":
            if _number(value):
                ok = 0 <= value < 1
            elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) for v in value):
                ok = 0 < value[0] <= value[1]
            else:
                ok = False
        elif key in ("shift",):
            ok = _number(value) and 0 <= value < 1
        elif key == "erase":
            ok = _number(value) and 0 <= value <= 1
        elif key == "shear":
            ok = _number(value) and 0 <= value < 90
        else:  # rotate, noise
            ok = _number(value) and value >= 0
        if not ok:
            raise ConfigError(f"{where}.{key} must be {AUGMENT_KEYS[key]}, got {value!r}")
    return dict(spec)


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


def check_detect_augment(spec: Any, where: str = "data.augment") -> dict[str, Any]:
    """``spec`` of a detection source's augmentation as a plain dict, checked; ConfigError otherwise."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where} must be a mapping of augmentations, got {spec!r}",
            hint=f"for example {where}.hflip=true {where}.scale=[0.8,1.2]; keys: {', '.join(DETECT_AUGMENT_KEYS)}",
        )
    for key, value in spec.items():
        if key not in DETECT_AUGMENT_KEYS:
            raise ConfigError(
                f"unknown augmentation '{where}.{key}'{did_you_mean(str(key), DETECT_AUGMENT_KEYS)}",
                hint=f"detection augmentations: {', '.join(DETECT_AUGMENT_KEYS)}",
            )
        if key in ("hflip", "vflip"):
            ok = isinstance(value, bool)
        elif key == "scale":
            if _number(value):
                ok = 0 <= value < 1
            elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) for v in value):
                ok = 0 < value[0] <= value[1]
            else:
                ok = False
        elif key == "crop":
            ok = _number(value) and 0 < value <= 1
        elif key == "min_visible":
            ok = _number(value) and 0 <= value <= 1
        elif key == "noise":
            ok = _number(value) and value >= 0
        else:  # brightness, contrast, saturation
            ok = _number(value) and 0 <= value < 1
        if not ok:
            raise ConfigError(f"{where}.{key} must be {DETECT_AUGMENT_KEYS[key]}, got {value!r}")
    return dict(spec)
