"""``vision.detection``: the LightningModule training a one-stage, anchor-free detector (FCOS-style).

Batches are ``(images (N, 3, H, W), [{"boxes": (n, 4) xyxy pixels, "labels": (n,)}, ...])`` (the
detection sources' ``collate_fn``). The model in the ``model`` slot maps images to
``(N, A, 5 + C)`` and has ``detect(images)`` giving the locations too (`Detects`;
``vision.detector`` does). Logged: ``train/loss`` (and ``train/cls``, ``train/box``, ``train/ctr``),
``val/loss``, and per evaluated split ``{split}/map`` (mAP@[.5:.95]), ``{split}/map_50``,
``{split}/map_75``, ``{split}/mar_100`` and, with ``class_metrics``, ``{split}/ap/<class>`` and
``{split}/ap_50/<class>``. A run is judged by ``map_50``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import lightning as L
import torch
from annotated_types import Ge, Gt, Le
from torch import nn

from engine import ConfigError
from engine.data import sample_batch
from engine.protocols import implements
from engine.tasks import configure_optimizers, eval_mode
from engine_vision.detection.boxes import batched_nms
from engine_vision.detection.losses import assign, detection_loss
from engine_vision.detection.metrics import MeanAP
from engine_vision.detection.model import BOX_COLUMNS


@runtime_checkable
class Detects(Protocol):
    """A detection network: ``detect(images)`` returns the outputs with their locations (``model.Anchors``)."""

    def detect(self, x: torch.Tensor) -> Any: ...


class DetectionTask(L.LightningModule):
    """Object detection: FCOS targets, focal or quality-focal classification, GIoU/L1 boxes, NMS, COCO mAP.

    Args:
        num_classes: number of object classes (from the data).
        class_names: class names (from the data), for per-class AP and predictions.
        input_shape: [channels, height, width] of the images (from the data); boxes are clipped to it.
        classification: focal (with a centre-ness branch, as FCOS) or quality_focal (GFL: the class score
            learns the IoU with the box, no centre-ness).
        box_loss: giou, l1 (on the distances to the sides, in strides) or giou_l1 (both).
        box_weight: weight of the box loss against the classification loss.
        focal_alpha: focal loss weight of the positives (0.25 as RetinaNet).
        focal_gamma: focusing exponent of the focal loss (beta of the quality focal loss).
        center_radius: a location is positive only within this many strides of a box's centre (0: anywhere in it).
        score_threshold: detections scoring below this are dropped from predictions (predict, serve, deploy).
        eval_score_threshold: the same for the mAP of validation and test (COCO evaluations keep low scores:
            they raise recall at a small cost in precision).
        nms_iou: non-maximum suppression drops a box overlapping a better one of its class by more than this IoU.
        agnostic_nms: suppress overlapping boxes whatever their classes (one label per object, for predictions
            where objects do not overlap).
        max_detections: detections kept per image, best first.
        pre_nms_top_k: candidates per image going into NMS, best first.
        class_metrics: also log AP and AP@0.5 per class.
        metric_backend: the COCO evaluation torchmetrics runs: faster_coco_eval (a C++ port of pycocotools'
            COCOeval, same figures, several times faster) or pycocotools (pip install pycocotools).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: Annotated[int, Ge(1)],
        scheduler: Callable[..., Any] | None = None,
        class_names: list[str] | None = None,
        input_shape: list[int] | None = None,
        classification: Literal["focal", "quality_focal"] = "focal",
        box_loss: Literal["giou", "l1", "giou_l1"] = "giou",
        box_weight: Annotated[float, Ge(0)] = 1.0,
        focal_alpha: float = 0.25,
        focal_gamma: Annotated[float, Ge(0)] = 2.0,
        center_radius: Annotated[float, Ge(0)] = 1.5,
        score_threshold: Annotated[float, Ge(0), Le(1)] = 0.3,
        eval_score_threshold: Annotated[float, Ge(0), Le(1)] = 0.05,
        nms_iou: Annotated[float, Gt(0), Le(1)] = 0.6,
        agnostic_nms: bool = False,
        max_detections: Annotated[int, Ge(1)] = 100,
        pre_nms_top_k: Annotated[int, Ge(1)] = 1000,
        class_metrics: bool = True,
        metric_backend: Literal["faster_coco_eval", "pycocotools"] = "faster_coco_eval",
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        self.image_size = (int(input_shape[-2]), int(input_shape[-1])) if input_shape else None
        self.classification, self.box_loss, self.box_weight = classification, box_loss, box_weight
        self.focal_alpha, self.focal_gamma, self.center_radius = focal_alpha, focal_gamma, center_radius
        self.score_threshold, self.eval_score_threshold, self.nms_iou = score_threshold, eval_score_threshold, nms_iou
        self.max_detections, self.pre_nms_top_k = max_detections, pre_nms_top_k
        self.agnostic_nms = agnostic_nms
        self.class_metrics, self.metric_backend = class_metrics, metric_backend
        self.val_map = MeanAP(class_metrics=class_metrics, backend=metric_backend)
        self.test_map = MeanAP(class_metrics=class_metrics, backend=metric_backend)

    # ---------------------------------------------------------------- protocols

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Detection runs are judged by mAP at IoU 0.5."""
        return ("map_50", "max")

    def check_data(self, datamodule: Any) -> None:
        """Two training samples through the model and the losses; what does not fit becomes one ConfigError."""
        batch = sample_batch(datamodule)
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2 and isinstance(batch[1], (list, tuple))):
            raise ConfigError(
                "vision.detection needs detection data: batches of (images, [{boxes, labels}, ...])",
                hint="use vision.shapes_detect, vision.coco or vision.voc",
            )
        x, targets = batch
        if not all(isinstance(t, dict) and "boxes" in t and "labels" in t for t in targets):
            raise ConfigError("vision.detection needs targets {'boxes': (n, 4), 'labels': (n,)} per image")
        if not implements(self.model, Detects):
            raise ConfigError(
                f"vision.detection needs a detection model with detect(images), got {type(self.model).__name__}",
                hint="use model=vision.detector",
            )
        try:
            with eval_mode(self.model):
                self._losses(x, targets)
        except Exception as exc:
            raise ConfigError(
                f"the model does not fit the data: images of shape {tuple(x.shape[1:])}: {type(exc).__name__}: {exc}",
                hint="check model parameters you set that the data also provides (see facts with --dry-run)",
            ) from exc

    # ---------------------------------------------------------------- training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _losses(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> tuple[dict[str, Any], Any]:
        out = self.model.detect(x)
        channels = out.outputs.shape[-1]
        if channels != BOX_COLUMNS + self.num_classes:
            raise ValueError(
                f"the model predicts {channels - BOX_COLUMNS} classes, the data has {self.num_classes} (num_classes)"
            )
        assigned = assign(out.points, out.strides, out.levels, targets, self.center_radius)
        losses = detection_loss(
            out.outputs,
            out.points,
            out.strides,
            assigned,
            self.num_classes,
            self.classification,
            self.box_loss,
            self.box_weight,
            self.focal_alpha,
            self.focal_gamma,
        )
        return losses, out.outputs

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, targets = batch
        losses, _ = self._losses(x, targets)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=len(x))
        for name in ("cls", "box", "ctr"):
            self.log(f"train/{name}", losses[name], batch_size=len(x))
        return losses["loss"]

    def _evaluate(self, batch: Any, split: str, metric: MeanAP) -> None:
        x, targets = batch
        losses, outputs = self._losses(x, targets)
        self.log(f"{split}/loss", losses["loss"], prog_bar=True, batch_size=len(x), sync_dist=True)
        detections = self.postprocess(outputs.detach(), score_threshold=self.eval_score_threshold)
        metric.update(detections, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])

    def _log_map(self, split: str, metric: MeanAP) -> None:
        result = metric.compute()
        metric.reset()
        for key in ("map", "map_50", "map_75", "mar_100"):
            self.log(f"{split}/{key}", float(result[key]), prog_bar=key == "map_50", sync_dist=False)
        if self.class_metrics:
            classes = [int(c) for c in torch.as_tensor(result.get("classes", [])).reshape(-1).tolist()]
            for key, name in (("map_per_class", "ap"), ("map_50_per_class", "ap_50")):
                values = torch.as_tensor(result.get(key, [])).reshape(-1).tolist()
                for c, value in zip(classes, values, strict=False):
                    if value >= 0 and 0 <= c < len(self.class_names):
                        label = self.class_names[c].replace(" ", "_")
                        self.log(f"{split}/{name}/{label}", float(value))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_map)

    def on_validation_epoch_end(self) -> None:
        self._log_map("val", self.val_map)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_map)

    def on_test_epoch_end(self) -> None:
        self._log_map("test", self.test_map)

    def predict_step(self, batch: Any, batch_idx: int) -> list[dict[str, torch.Tensor]]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.postprocess(self.model(x))

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)

    # ---------------------------------------------------------------- post-processing

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """``(N, A, C)`` detection scores: sqrt(class x centre-ness) for focal, the class score for quality focal."""
        probs = outputs[..., BOX_COLUMNS:].float().sigmoid()
        if self.classification == "quality_focal":
            return probs
        return (probs * outputs[..., 4:5].float().sigmoid()).sqrt()

    def postprocess(
        self, outputs: torch.Tensor, score_threshold: float | None = None, max_detections: int | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """Network outputs ``(N, A, 5 + C)`` -> per image ``{"boxes", "scores", "labels"}``, best first.

        Scores below the threshold go, the best ``pre_nms_top_k`` candidates go through class-wise
        NMS (``nms_iou``; across classes with ``agnostic_nms``), the best ``max_detections`` stay; boxes
        are clipped to the image.
        """
        threshold = self.score_threshold if score_threshold is None else score_threshold
        limit = self.max_detections if max_detections is None else max_detections
        outputs = torch.as_tensor(outputs)
        scores = self.scores(outputs)
        results = []
        for boxes, score in zip(outputs[..., :4].float(), scores, strict=True):
            flat = score.flatten()
            candidates = torch.nonzero(flat > threshold).flatten()
            if len(candidates) > self.pre_nms_top_k:
                candidates = candidates[flat[candidates].topk(self.pre_nms_top_k).indices]
            anchor, label = candidates // self.num_classes, candidates % self.num_classes
            b, s = boxes[anchor], flat[candidates]
            if self.image_size is not None:
                h, w = self.image_size
                b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
            groups = torch.zeros_like(label) if self.agnostic_nms else label
            keep = batched_nms(b, s, groups, self.nms_iou, limit)
            results.append({"boxes": b[keep], "scores": s[keep], "labels": label[keep]})
        return results

    def describe_outputs(self, outputs: torch.Tensor) -> list[dict[str, Any]]:
        """One JSON-ready record per image: ``{"detections": [{"label", "index", "score", "box"}, ...]}``.

        ``box`` is ``[x1, y1, x2, y2]`` in pixels of the model's input, best score first (what
        ``engine predict`` and ``engine serve`` answer; engine-deploy's ``DescribesOutputs``).
        """
        records = []
        for det in self.postprocess(outputs):
            records.append(
                {
                    "detections": [
                        {
                            "label": self.class_names[c] if c < len(self.class_names) else str(c),
                            "index": c,
                            "score": round(s, 6),
                            "box": [round(v, 2) for v in box],
                        }
                        for box, s, c in zip(
                            det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(), strict=True
                        )
                    ]
                }
            )
        return records

    def score_outputs(self, outputs: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """mAP of network outputs against targets, as validation measures it: ``{"map", "map_50"}``.

        ``engine deploy`` compares eager and artifact outputs with it (engine-deploy's ``ScoresOutputs``).
        """
        metric = MeanAP(class_metrics=False, backend=self.metric_backend)
        detections = self.postprocess(outputs, score_threshold=self.eval_score_threshold)
        metric.update(detections, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
        result = metric.compute()
        return {"map": float(result["map"]), "map_50": float(result["map_50"])}
