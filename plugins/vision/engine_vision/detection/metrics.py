"""Mean average precision by the COCO evaluation (faster-coco-eval, or pycocotools), as torchmetrics runs it.

torchmetrics' ``MeanAveragePrecision`` cannot be built without torchvision (it converts boxes with
``torchvision.ops``), and torchvision pins one torch, so it cannot be installed beside every torch.
`MeanAP` is a torchmetrics ``Metric`` of our own (public API only: ``Metric``, ``add_state``)
that hands the boxes to the COCO evaluation exactly as torchmetrics does: the same COCO-format
datasets (images numbered from 0, annotations from 1, a box's area ``w * h``, every label a
category), the same IoU thresholds (0.5:0.95 by 0.05), recall thresholds (0:1 by 0.01) and max
detections (1, 10, 100), and per-class AP by evaluating again with ``catIds=[c]``: the figures are
torchmetrics'. The COCO evaluation itself is the backend's public ``COCO``/``COCOeval``; the default,
faster-coco-eval, gives the same figures as pycocotools (tested), several times faster.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Literal

import numpy as np
import torch
from torchmetrics import Metric

from engine import ConfigError

#: The thresholds of torchmetrics' ``MeanAveragePrecision`` (its float32 linspace, as it passes them on).
IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10).tolist()
RECALL_THRESHOLDS = torch.linspace(0.0, 1.0, 101).tolist()
MAX_DETECTIONS = [1, 10, 100]
#: ``COCOeval.stats``, in order.
STATS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100")
STATS += ("mar_small", "mar_medium", "mar_large")
_STATES = ("det_boxes", "det_scores", "det_labels", "gt_boxes", "gt_labels", "gt_crowds", "gt_areas")


def coco_tools(backend: str) -> tuple[Any, Any]:
    """``(COCO, COCOeval)`` of ``backend``; a ConfigError when it is not installed."""
    try:
        if backend == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            return COCO, COCOeval
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"mAP needs {backend}: {exc}",
            hint="pip install faster-coco-eval (engine-vision depends on it) or pycocotools",
        ) from None


def _xywh(boxes: torch.Tensor) -> torch.Tensor:
    boxes = boxes.detach().reshape(-1, 4).float()
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


def _check(preds: Any, target: Any) -> None:
    if not isinstance(preds, (list, tuple)) or not isinstance(target, (list, tuple)):
        raise ValueError("mAP takes a list of predictions and a list of targets, one dict per image")
    if len(preds) != len(target):
        raise ValueError(f"mAP: {len(preds)} predictions for {len(target)} targets (one each per image)")
    for keys, items in ((("boxes", "scores", "labels"), preds), (("boxes", "labels"), target)):
        for item in items:
            missing = [k for k in keys if k not in item]
            if missing:
                raise ValueError(f"mAP: an image's dict has no {missing} (needs {list(keys)})")
            if any(len(item[k]) != len(item["labels"]) for k in keys):
                raise ValueError(f"mAP: an image's {list(keys)} differ in length")


class MeanAP(Metric):
    """COCO mAP on ``xyxy`` boxes, usable without torchvision (see the module doc).

    ``compute()`` returns what torchmetrics' ``MeanAveragePrecision`` does (``map``, ``map_50``,
    ``map_75``, ``map_small``, …, ``mar_100``, ``classes``; with ``class_metrics``, ``map_per_class``
    and ``mar_100_per_class``), plus ``map_50_per_class`` (AP at IoU 0.5 per class, read from the
    precision table of the COCO evaluation) when ``class_metrics`` is set. In distributed runs each
    process must see the same number of images (Lightning's distributed sampler pads to that).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        class_metrics: bool = False,
        backend: Literal["faster_coco_eval", "pycocotools"] = "faster_coco_eval",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        coco_tools(backend)  # refuse a missing backend now, not after an epoch
        self.class_metrics, self.backend = class_metrics, backend
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx=None)

    def update(self, preds: list[dict[str, torch.Tensor]], target: list[dict[str, torch.Tensor]]) -> None:
        """Add a batch: ``preds`` of ``{"boxes" (xyxy), "scores", "labels"}``, ``target`` of ``{"boxes", "labels"}``."""
        _check(preds, target)
        limit = MAX_DETECTIONS[-1]
        for item in preds:
            boxes, scores, labels = item["boxes"], item["scores"], item["labels"]
            if len(scores) > limit:  # the evaluation keeps the best max-detections per image anyway
                keep = scores.argsort(descending=True)[:limit]
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            self.det_boxes.append(_xywh(boxes))
            self.det_scores.append(scores.detach())
            self.det_labels.append(labels.detach())
        for item in target:
            labels = item["labels"].detach()
            self.gt_boxes.append(_xywh(item["boxes"]))
            self.gt_labels.append(labels)
            self.gt_crowds.append(item.get("iscrowd", torch.zeros_like(labels)))
            self.gt_areas.append(item.get("area", torch.zeros_like(labels)))

    def _classes(self) -> list[int]:
        labels = [*self.det_labels, *self.gt_labels]
        return [int(c) for c in torch.cat(labels).unique().tolist()] if labels else []

    def _dataset(
        self, coco: Any, boxes: list[torch.Tensor], labels: list[torch.Tensor], classes: list[int], **extra: Any
    ) -> Any:
        """The COCO object of one side (ground truth, or detections with ``scores``), as torchmetrics writes it."""
        images, annotations = [], []
        scores, crowds, areas = extra.get("scores"), extra.get("crowds"), extra.get("areas")
        for image, (image_boxes, image_labels) in enumerate(zip(boxes, labels, strict=True)):
            images.append({"id": image})
            for k, (box, label) in enumerate(zip(image_boxes.cpu().tolist(), image_labels.cpu().tolist(), strict=True)):
                given = float(areas[image][k]) if areas is not None else 0.0
                annotation = {
                    "id": len(annotations) + 1,  # from 1: COCOeval's results are wrong otherwise
                    "image_id": image,
                    "area": given if given > 0 else box[2] * box[3],
                    "category_id": int(label),
                    "iscrowd": int(crowds[image][k]) if crowds is not None else 0,
                    "bbox": box,
                }
                if scores is not None:
                    annotation["score"] = float(scores[image][k])
                annotations.append(annotation)
        dataset = coco()
        dataset.dataset = {
            "info": {"description": "engine-vision mAP"},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in classes],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            dataset.createIndex()
        return dataset

    def _evaluate(self, classes: list[int], only: int | None = None) -> Any:
        coco, cocoeval = coco_tools(self.backend)
        truth = self._dataset(coco, self.gt_boxes, self.gt_labels, classes, crowds=self.gt_crowds, areas=self.gt_areas)
        found = self._dataset(coco, self.det_boxes, self.det_labels, classes, scores=self.det_scores)
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = cocoeval(truth, found, iouType="bbox")
            evaluation.params.iouThrs = np.array(IOU_THRESHOLDS, dtype=np.float64)
            evaluation.params.recThrs = np.array(RECALL_THRESHOLDS, dtype=np.float64)
            evaluation.params.maxDets = list(MAX_DETECTIONS)
            if only is not None:
                evaluation.params.catIds = [only]
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return evaluation

    def compute(self) -> dict[str, Any]:
        classes = self._classes()
        result: dict[str, Any] = {}
        if not self.gt_labels or not self.det_labels:  # nothing was measured
            result.update({key: torch.tensor([-1.0]) for key in STATS})
        else:
            evaluation = self._evaluate(classes)
            result.update(
                {
                    key: torch.tensor([float(v)], dtype=torch.float32)
                    for key, v in zip(STATS, evaluation.stats, strict=True)
                }
            )
            if self.class_metrics:
                stats = [self._evaluate(classes, c).stats for c in classes]
                result["map_per_class"] = torch.tensor([s[0] for s in stats], dtype=torch.float32)
                result[f"mar_{MAX_DETECTIONS[-1]}_per_class"] = torch.tensor([s[8] for s in stats], dtype=torch.float32)
                # precision: (iou thresholds, recall thresholds, classes, areas, max detections)
                precision = torch.as_tensor(np.asarray(evaluation.eval["precision"]))
                at50 = precision[0, :, :, 0, -1]  # IoU 0.5, every area, the largest max-detections
                valid = at50 > -1
                ap = (at50.clamp_min(0) * valid).sum(0) / valid.sum(0).clamp_min(1)
                result["map_50_per_class"] = torch.where(valid.any(0), ap, torch.full_like(ap, -1.0))
            else:
                result["map_per_class"] = torch.tensor([-1.0])
                result[f"mar_{MAX_DETECTIONS[-1]}_per_class"] = torch.tensor([-1.0])
        result["classes"] = torch.tensor(classes, dtype=torch.int32)
        return result
