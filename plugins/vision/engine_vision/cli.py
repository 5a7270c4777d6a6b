"""Handlers of the ``engine vision`` commands (imported only when one runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import EngineError


def shapes(args: argparse.Namespace) -> int:
    """``engine vision shapes DIR``: write a demo image folder."""
    from engine_vision.shapes import SHAPES, write_shapes

    root = Path(args.dir).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise EngineError(f"{root} already exists and is not an empty folder", hint="choose a new folder")
    if args.per_class < 1 or args.size < 8:
        raise EngineError(f"need --per-class >= 1 and --size >= 8, got {args.per_class} and {args.size}")
    write_shapes(root, args.per_class, args.size, args.classes, args.grey, args.seed)
    names = ", ".join(SHAPES[: args.classes])
    print(f"wrote {args.per_class * args.classes} images ({names}) of {args.size}x{args.size} px to {root}")
    print(f"train on it: engine run model=vision.resnet model.width=16 data=vision.image_folder data.root={root}")
    return 0


def shapes_detect(args: argparse.Namespace) -> int:
    """``engine vision shapes-detect DIR``: images of ``vision.shapes_detect`` and their COCO annotations."""
    from engine_vision.detection.shapes import write_detection_set

    root = Path(args.dir).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise EngineError(f"{root} already exists and is not an empty folder", hint="choose a new folder")
    if args.images < 1 or args.size < 16:
        raise EngineError(f"need --images >= 1 and --size >= 16, got {args.images} and {args.size}")
    coco = write_detection_set(root, args.images, args.size, args.classes, args.seed)
    print(
        f"wrote {args.images} images of {args.size}x{args.size} px with {len(coco['annotations'])} boxes "
        f"to {root / 'images'}, annotations in {root / 'annotations.json'} (COCO)"
    )
    print(f"predict on one: engine predict RUN {root / 'images' / '0000.png'} --out {root / 'boxes.png'}")
    return 0
