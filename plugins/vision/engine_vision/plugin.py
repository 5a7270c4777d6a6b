"""The vision plugin: declarations only (no torch, numpy, Pillow or scikit-learn imported here)."""

from __future__ import annotations

import argparse
from typing import Any

from engine import CommandSink, Component, Recipe, Weights, hookimpl

ENGINE_API = ">=1,<2"

_FACTS = (
    "problem",
    "num_classes",
    "out_features",
    "class_names",
    "input_shape",
    "in_channels",
    "image_size",
    "in_features",
    "preprocessing",
)
_DATA_SOURCES = ("vision.digits", "vision.image_folder")
_DETECT_FACTS = ("problem", "num_classes", "class_names", "input_shape", "in_channels", "image_size", "preprocessing")
_DETECT_SOURCES = ("vision.coco", "vision.voc", "vision.shapes_detect")
#: ``model.weights=digits``: made by bench/make_weights.py (which prints the SHA-256 and accuracy to declare).
_DIGITS_WEIGHTS = Weights(
    "engine_vision:weights/cnn-digits.safetensors",
    "3b97a5e85e4a62fe62d2bf5fec45bd2446c9f33693757fbbdb1418ba17656f47",
    "trained by recipe vision/digits (seed 0): test accuracy 1.0000 on its test split (seed 0, 360 images)",
    {"width": 32, "stages": 3, "upsample": 2, "norm": "batch"},
)


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_vision.models"
    return [
        Component(
            "cnn",
            f"{m}:SmallCNN",
            "Small VGG-style conv net (conv-BN-ReLU stages, optional upsampling)",
            weights={"digits": _DIGITS_WEIGHTS},
        ),
        Component(
            "resnet",
            f"{m}:ResNet",
            "ResNet-18/34/50 with a stem that adapts to small images",
            # timm's and torchvision's ResNet-18/34/50 state dicts (one layout): model.init_from=resnet50.safetensors
            adapters=("engine_vision.adapters:timm_resnet",),
        ),
        Component("vit", f"{m}:ViT", "Vision Transformer: patch size, depth, width, heads configurable"),
        Component(
            "detector",
            "engine_vision.detection.model:Detector",
            "Anchor-free detector (FCOS-style): ResNet/CNN backbone, feature pyramid, shared head",
        ),
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    m, image, detect = (
        "engine_vision.data",
        "engine_vision.spec:check_image_data",
        "engine_vision.spec:check_detection_data",
    )
    return [
        Component(
            "digits",
            f"{m}:Digits",
            "scikit-learn's 8x8 handwritten digits, stratified seeded split",
            _FACTS,
            check=image,
        ),
        Component(
            "image_folder",
            f"{m}:ImageFolder",
            "A folder of class subfolders of PNG/JPEG images (Pillow)",
            _FACTS,
            check=image,
        ),
        Component(
            "coco",
            "engine_vision.detection.coco:Coco",
            "Object detection data: COCO-format JSON annotations and an image folder",
            _DETECT_FACTS,
            task="vision.detection",
            check=detect,
        ),
        Component(
            "voc",
            "engine_vision.detection.voc:Voc",
            "Object detection data: Pascal VOC XML annotations (Annotations/, JPEGImages/, ImageSets/)",
            _DETECT_FACTS,
            task="vision.detection",
            check=detect,
        ),
        Component(
            "shapes_detect",
            "engine_vision.detection.shapes:ShapesDetect",
            "Generated detection data: coloured shapes with boxes on cluttered backgrounds, seeded split",
            _DETECT_FACTS,
            task="vision.detection",
            check=detect,
        ),
    ]


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "detection",
            "engine_vision.detection.task:DetectionTask",
            "Object detection (one-stage, anchor-free): focal/GIoU losses, NMS, COCO mAP",
            slots={"model": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"model": "vision.detector", "optimizer": "adamw", "scheduler": None},
            required_slots=("model",),
        )
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "digits",
            "engine_vision:recipes/digits.yaml",
            "Small CNN on 8x8 digits with augmentation: >= 99% test accuracy in about a minute on CPU",
            targets=("test/accuracy >= 0.99",),
        ),
        Recipe(
            "digits-resnet",
            "engine_vision:recipes/digits-resnet.yaml",
            "ResNet-18 (narrow, small stem) on 8x8 digits with augmentation",
            targets=("test/accuracy >= 0.99",),
        ),
        Recipe(
            "digits-vit",
            "engine_vision:recipes/digits-vit.yaml",
            "A small Vision Transformer on 8x8 digits (2x2 patches, 6 blocks)",
            targets=("test/accuracy >= 0.95",),  # no pre-training: below the CNN's 0.99 (see the docs)
        ),
        Recipe(
            "shapes-detect",
            "engine_vision:recipes/shapes-detect.yaml",
            "Detector (ResNet-18 backbone, pyramid, shared head) on generated shapes: test mAP@0.5 >= 0.9 on CPU",
            targets=("test/map_50 >= 0.9",),
        ),
    ]


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    data = config["data"]
    if data is not None and data["name"] in (*_DATA_SOURCES, *_DETECT_SOURCES) and data.get("augment"):
        from engine_vision.augment import make_callback

        return [make_callback()]
    return []


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    vision = subparsers.add_parser(
        "vision",
        help="vision tools: generate a demo image folder or detection images",
        description="Tools of the vision plugin (engine-vision).",
    )
    vsub = vision.add_subparsers(dest="vision_command", metavar="SUBCOMMAND")
    p = vsub.add_parser(
        "shapes",
        help="write a folder of generated coloured-shape PNGs (one subfolder per class)",
        description="Write DIR/<shape>/<n>.png: coloured circles, squares, triangles (and crosses) on noisy "
        "backgrounds, ready for `engine run model=vision.resnet data=vision.image_folder data.root=DIR`.",
        epilog="example:\n  engine vision shapes /tmp/shapes --per-class 60 --size 24\n"
        "  engine run model=vision.resnet model.width=16 data=vision.image_folder data.root=/tmp/shapes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", help="output folder (created; must be empty or absent)")
    p.add_argument("--per-class", type=int, default=50, help="images per class (default: 50)")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default: 32)")
    p.add_argument("--classes", type=int, default=3, choices=(2, 3, 4), help="number of shapes (default: 3)")
    p.add_argument("--grey", action="store_true", help="write greyscale images instead of colour")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(handler="engine_vision.cli:shapes")
    p = vsub.add_parser(
        "shapes-detect",
        help="write generated detection images (coloured shapes with boxes) and their COCO annotations",
        description="Write DIR/images/<n>.png and DIR/annotations.json (COCO format): images of "
        "vision.shapes_detect (several coloured shapes on cluttered backgrounds) with their boxes, to try "
        "`engine predict RUN image.png --out boxes.png` or `data=vision.coco`.",
        epilog="example:\n  engine vision shapes-detect /tmp/det --images 8\n"
        "  engine predict RUN /tmp/det/images/0000.png --out /tmp/det/boxes.png\n"
        "  engine run vision/shapes-detect data=vision.coco data.annotations=/tmp/det/annotations.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", help="output folder (created; must be empty or absent)")
    p.add_argument("--images", type=int, default=16, help="number of images (default: 16)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    p.add_argument("--classes", type=int, default=4, choices=(1, 2, 3, 4, 5), help="number of shapes (default: 4)")
    p.add_argument("--seed", type=int, default=12345, help="random seed (default: 12345, not a training seed)")
    p.set_defaults(handler="engine_vision.cli:shapes_detect")
