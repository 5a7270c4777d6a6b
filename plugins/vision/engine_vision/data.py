"""Image data sources: scikit-learn's 8x8 digits and a folder of class subfolders.

Both hold the images in memory as one normalised float tensor ``(N, C, H, W)``,
expose the facts image models need (``num_classes``, ``input_shape``,
``in_channels``, ``image_size``, ``class_names``, ``preprocessing``), augment the
training split only (see `engine_vision.augment`), and implement
``load_input(path)``: one image file, preprocessed exactly as the model sees it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from annotated_types import Ge, Le, Lt

from engine import ConfigError, EngineError
from engine.data import ArrayDataset, DataSource, split_indices
from engine_vision.augment import Augment, AugmentedDataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class VisionSource(DataSource):
    """Shared behaviour: splits, normalisation, facts, augmentation of the training split."""

    x: torch.Tensor  # (N, C, H, W), normalised
    y: torch.Tensor  # (N,) int64
    class_names: list[str]
    index: dict[str, torch.Tensor]
    mean: torch.Tensor  # (C,)
    std: torch.Tensor  # (C,)
    preprocessing: dict[str, Any]
    augment: Augment
    seed: int

    def _normalise(self, raw: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        """``raw`` (N, C, H, W) in [0, 1]: set mean/std (from the training split unless given) and normalise."""
        c = raw.shape[1]
        train = raw[self.index["train"]]
        self.mean = _per_channel(mean, c, "mean") if mean is not None else train.mean((0, 2, 3))
        self.std = (
            _per_channel(std, c, "std") if std is not None else train.std((0, 2, 3), unbiased=False).clamp_min(1e-6)
        )
        if (self.std <= 0).any():
            raise ConfigError(f"data.std must be positive, got {self.std.tolist()}")
        self.x = (raw - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def _blank(self, value: float) -> torch.Tensor:
        """A blank pixel of raw value ``value`` (in [0, 1]), normalised: what augmentation fills with."""
        return (value - self.mean) / self.std

    @property
    def facts(self) -> dict[str, Any]:
        c, h, w = self.x.shape[1:]
        return {
            "problem": "classification",
            "num_classes": len(self.class_names),
            "out_features": len(self.class_names),
            "class_names": list(self.class_names),
            "input_shape": [c, h, w],
            "in_channels": c,
            "image_size": [h, w],
            "in_features": c * h * w,
            "preprocessing": self.preprocessing,
        }

    def datasets(self) -> dict[str, torch.utils.data.Dataset]:
        out: dict[str, torch.utils.data.Dataset] = {}
        for split, idx in self.index.items():
            if split == "train" and self.augment.active:
                out[split] = AugmentedDataset(self.x[idx], self.y[idx], self.augment, self.seed)
            else:
                out[split] = ArrayDataset(self.x[idx], self.y[idx])
        return out

    def _to_input(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.mean.view(-1, 1, 1)) / self.std.view(-1, 1, 1)


def _per_channel(values: Sequence[float], channels: int, name: str) -> torch.Tensor:
    t = torch.tensor([float(v) for v in values])
    if len(t) == 1:
        t = t.repeat(channels)
    if len(t) != channels:
        raise ConfigError(f"data.{name} has {len(t)} values for {channels}-channel images", hint="give 1 or C values")
    return t


# --------------------------------------------------------------------------- digits


class Digits(VisionSource):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), as 1x8x8 images.

    Pixel values 0..16 are scaled to [0, 1] and normalised with the training
    split's mean and std. The split is stratified and seeded: ``test_fraction``
    of each class for the test set, ``val_fraction`` for validation.

    ``load_input`` accepts a ``.npy`` array of shape (8, 8) with values 0..16,
    or an image file (converted to grey, resized to 8x8; dark ink on a light
    background is inverted to match the data's light-on-dark convention).

    Args:
        val_fraction: fraction of each class held out for validation.
        test_fraction: fraction of each class held out for the final test (the issue's protocol: 0.2).
        seed: seed of the split and of the augmentation (recipes set it to the run's seed).
        augment: augmentation of the training split, e.g. {rotate: 10, shift: 0.1, scale: [0.9, 1.1]};
            keys rotate, shift, scale, shear, hflip, vflip, noise, erase.
        classes: keep only these digits, e.g. [5, 6, 7, 8, 9] (labels become 0..k-1 in this order,
            class names stay the digits); default: all ten.
    """

    def __init__(
        self,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        augment: dict[str, float | bool | list[float]] | None = None,
        classes: list[int] | None = None,
    ) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        raw = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
        self.y = torch.tensor(bunch.target, dtype=torch.long)
        self.class_names = [str(i) for i in range(10)]
        if classes is not None:
            if not classes or len(set(classes)) != len(classes) or any(not 0 <= c <= 9 for c in classes):
                raise ConfigError(
                    f"data.classes must be distinct digits 0..9, got {list(classes)}", hint="e.g. data.classes=[5,6,7]"
                )
            keep = torch.isin(self.y, torch.tensor(classes))
            remap = torch.full((10,), -1, dtype=torch.long)
            remap[torch.tensor(classes)] = torch.arange(len(classes))
            raw, self.y = raw[keep], remap[self.y[keep]]
            self.class_names = [str(c) for c in classes]
        self.seed = seed
        self.index = split_indices(len(raw), val_fraction, test_fraction, seed, stratify=self.y)
        self._normalise(raw, None, None)
        self.augment = Augment(augment, fill=self._blank(0.0))
        self.preprocessing = {
            "source": "sklearn.datasets.load_digits",
            "resize": [8, 8],
            "channels": "L",
            "channel_order": "CHW",
            "value_range": [0, 16],
            "scale": 1 / 16,
            "invert": "auto: images whose mean is above half range are inverted (dark ink on light paper)",
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    def load_input(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """One digit as the model sees it, ``(1, 8, 8)``: from a ``.npy`` (8x8, 0..16) or an image file."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise EngineError(f"input file not found: {file}")
        if file.suffix.lower() == ".npy":
            try:
                arr = np.load(file, allow_pickle=False)
            except Exception as exc:
                raise EngineError(f"cannot read {file}: {exc}") from None
            if arr.shape != (8, 8):
                raise EngineError(
                    f"{file}: digits inputs are 8x8 arrays of values 0..16, got shape {arr.shape}",
                    hint="or pass an image file (it is converted to grey and resized to 8x8)",
                )
            raw = torch.tensor(arr, dtype=torch.float32).clamp(0, 16) / 16.0
        else:
            img = _open(file).convert("L").resize((8, 8), _resample())
            raw = torch.tensor(np.asarray(img, dtype=np.float32)) / 255.0
            if raw.mean() > 0.5:
                raw = 1.0 - raw  # dark ink on light paper -> the data's light-on-dark convention
        return self._to_input(raw[None])


# --------------------------------------------------------------------------- image folder


def _resample() -> Any:
    from PIL import Image

    return Image.Resampling.BILINEAR


def _open(file: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(file)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read image {file}: {exc}",
            hint="remove or replace the file (only PNG/JPEG/... images belong in class folders)",
        ) from None
    return img


def _channels(img: Any) -> int:
    """Channel count after dropping alpha (L/LA/1/I/F: 1; RGB/RGBA/P/CMYK/...: 3)."""
    return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3


def _to_array(img: Any, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """``img`` as float32 (C, H, W) in [0, 1], converted to ``channels`` and resized to ``size`` (H, W)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        from PIL import Image

        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    img = img.convert("L" if channels == 1 else "RGB")
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), _resample())
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _scan(root: Path, what: str) -> list[tuple[Path, str]]:
    """``(file, class name)`` for every image in the class subfolders of ``root``."""
    if not root.is_dir():
        raise ConfigError(f"image folder not found: {root}", hint=f"check data.{what}")
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        stray = [f for f in root.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS]
        raise ConfigError(
            f"no class subfolders in {root}" + (f" (found {len(stray)} loose images)" if stray else ""),
            hint="lay images out as ROOT/<class name>/<image>.png, one subfolder per class",
        )
    items: list[tuple[Path, str]] = []
    empty = []
    for d in classes:
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        files = [f for f in files if not any(part.startswith(".") for part in f.relative_to(d).parts)]
        if not files:
            empty.append(d.name)
        items += [(f, d.name) for f in files]
    if not items:
        raise ConfigError(
            f"no images in {root}: its class folders ({', '.join(c.name for c in classes[:5])}"
            f"{', …' if len(classes) > 5 else ''}) hold no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS[:3])} files",
            hint="put images in ROOT/<class name>/",
        )
    if empty:
        raise ConfigError(
            f"class folder(s) without images in {root}: {', '.join(empty)}",
            hint="remove the empty folders or add images to them",
        )
    return items


class ImageFolder(VisionSource):
    """A folder of class subfolders of images (PNG, JPEG, BMP, GIF, WebP, TIFF), read with Pillow.

    ``root/<class>/<image>``: the class names are the subfolder names (sorted).
    With ``root`` the images are split (stratified, seeded) into train/val/test
    by ``val_fraction`` and ``test_fraction``; with ``train_root`` (and
    optionally ``val_root``, ``test_root``) each folder is one split, and a
    split without its folder is carved out of ``train_root`` by its fraction.

    Images are converted to one channel count, resized to ``image_size``,
    scaled to [0, 1] and normalised per channel with the training split's mean
    and std (or the ``mean``/``std`` given), and kept in memory.

    Args:
        root: folder of class subfolders, split into train/val/test.
        train_root: folder of class subfolders for training (instead of root).
        val_root: folder for validation (with train_root); default: val_fraction of train_root.
        test_root: folder for the final test (with train_root); default: test_fraction of train_root.
        image_size: resize every image to [height, width] (or one int for square); default: the first image's size.
        channels: 1 (grey) or 3 (RGB) to convert every image; auto keeps the images' own and refuses a mix.
        mean: per-channel mean to normalise with, on the [0, 1] scale (default: the training split's).
        std: per-channel standard deviation to normalise with (default: the training split's).
        val_fraction: fraction held out for validation (per class).
        test_fraction: fraction held out for the final test (per class).
        seed: seed of the split and of the augmentation.
        augment: augmentation of the training split, e.g. {rotate: 15, hflip: true};
            keys rotate, shift, scale, shear, hflip, vflip, noise, erase.
    """

    def __init__(
        self,
        root: Annotated[str, "existing_path"] | None = None,
        train_root: Annotated[str, "existing_path"] | None = None,
        val_root: Annotated[str, "existing_path"] | None = None,
        test_root: Annotated[str, "existing_path"] | None = None,
        image_size: int | list[int] | None = None,
        channels: Literal["auto", 1, 3] = "auto",
        mean: list[float] | None = None,
        std: list[float] | None = None,
        val_fraction: Annotated[float, Ge(0), Lt(1)] = 0.1,
        test_fraction: Annotated[float, Ge(0), Lt(1)] = 0.2,
        seed: Annotated[int, Ge(0), Le(4294967295)] = 0,
        augment: dict[str, float | bool | list[float]] | None = None,
    ) -> None:
        if (root is None) == (train_root is None):
            raise ConfigError(
                "vision.image_folder needs either data.root (split into train/val/test) or data.train_root"
                + (", not both" if root is not None else ""),
                hint="for example data.root=path/to/images (one subfolder per class)",
            )
        if root is not None and (val_root or test_root):
            raise ConfigError("data.val_root and data.test_root go with data.train_root, not data.root")
        size: tuple[int, int] | None = None
        if image_size is not None:
            hw = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
            if len(hw) != 2 or any(s < 1 for s in hw):
                raise ConfigError(f"data.image_size must be a size or [height, width], got {image_size}")
            size = (int(hw[0]), int(hw[1]))

        folders = {"train": Path(root or train_root).expanduser()}  # type: ignore[arg-type]
        if val_root:
            folders["val"] = Path(val_root).expanduser()
        if test_root:
            folders["test"] = Path(test_root).expanduser()
        what = {"train": "root" if root else "train_root", "val": "val_root", "test": "test_root"}
        scanned = {split: _scan(folder, what[split]) for split, folder in folders.items()}
        self.class_names = sorted({c for _, c in scanned["train"]})
        for split in ("val", "test"):
            unknown = sorted({c for _, c in scanned.get(split, []) if c not in self.class_names})
            if unknown:
                raise ConfigError(
                    f"{folders[split]} has class folder(s) not in {folders['train']}: {', '.join(unknown)}",
                    hint="every split must use the training folder's classes",
                )
        files = [item for split in scanned for item in scanned[split]]
        split_of = [split for split in scanned for _ in scanned[split]]

        # Open every image once: detect channel counts (and refuse a mix), read the size.
        images = [_open(f) for f, _ in files]
        counts = [_channels(img) for img in images]
        if channels == "auto":
            kinds = sorted(set(counts))
            if len(kinds) > 1:
                grey = next(f for (f, _), n in zip(files, counts, strict=True) if n == 1)
                colour = next(f for (f, _), n in zip(files, counts, strict=True) if n == 3)
                raise ConfigError(
                    f"images with mixed channel counts: {grey} is greyscale (1 channel) but {colour} "
                    f"is colour (3 channels)",
                    hint="convert them all with data.channels=3 (RGB) or data.channels=1 (grey)",
                )
            channels = kinds[0]  # type: ignore[assignment]
        if size is None:
            size = (images[0].height, images[0].width)
        raw = torch.from_numpy(np.stack([_to_array(img, int(channels), size) for img in images]))
        for img in images:
            img.close()
        index = {c: i for i, c in enumerate(self.class_names)}
        self.y = torch.tensor([index[c] for _, c in files], dtype=torch.long)
        self.files = [str(f) for f, _ in files]

        # Splits: the separate folders, then fractions of the training folder for what is missing.
        where = {s: torch.tensor([i for i, sp in enumerate(split_of) if sp == s], dtype=torch.long) for s in scanned}
        train = where["train"]
        vf = 0.0 if "val" in where else val_fraction
        tf = 0.0 if "test" in where else test_fraction
        inner = split_indices(len(train), vf, tf, seed, stratify=self.y[train])
        self.index = {"train": train[inner["train"]]}
        for s in ("val", "test"):
            if s in where:
                self.index[s] = where[s]
            elif s in inner:
                self.index[s] = train[inner[s]]
        self.seed = seed
        self.channel_count = int(channels)
        self.size = size
        self._normalise(raw, mean, std)
        self.augment = Augment(augment, fill=self._blank(0.0))
        self.preprocessing = {
            "resize": list(size),
            "resample": "bilinear",
            "channels": "L" if self.channel_count == 1 else "RGB",
            "channel_order": "CHW",
            "value_range": [0, 255],
            "scale": 1 / 255,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    def load_input(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """One image file as the model sees it, ``(C, H, W)``: converted, resized and normalised."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise EngineError(f"input file not found: {file}")
        img = _open(file)
        arr = _to_array(img, self.channel_count, self.size)
        return self._to_input(torch.from_numpy(arr))
