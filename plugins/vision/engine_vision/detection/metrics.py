"""Mean average precision with torchmetrics' ``MeanAveragePrecision`` (COCO evaluation: faster-coco-eval).

torchmetrics refuses to build the metric without torchvision, and converts boxes with
``torchvision.ops.box_convert`` in ``update``: nothing else of torchvision is used for boxes.
torchvision cannot be installed beside every torch (it pins one), so :class:`MeanAP` is
torchmetrics' metric with those two points replaced: the check is skipped when building it
and ``update`` converts ``xyxy`` boxes to COCO's ``xywh`` itself, filling the metric's own
states exactly as torchmetrics does. ``compute`` (the COCO evaluation with faster-coco-eval or
pycocotools, the reduction across processes) is torchmetrics' unchanged. The default backend is
faster-coco-eval: the same figures as pycocotools (tested), several times faster.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torchmetrics.detection import mean_ap as _mean_ap
from torchmetrics.detection.helpers import _input_validator

from engine.errors import ConfigError

_STATES = ("detection_box", "detection_scores", "detection_labels", "groundtruth_box", "groundtruth_labels")


def _xywh(boxes: torch.Tensor) -> torch.Tensor:
    boxes = boxes.reshape(-1, 4).float()
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


class MeanAP(_mean_ap.MeanAveragePrecision):
    """torchmetrics' ``MeanAveragePrecision`` on ``xyxy`` boxes, usable without torchvision (see the module doc).

    ``compute()`` returns torchmetrics' dict (``map``, ``map_50``, ``map_75``, ``map_small``, …,
    ``map_per_class`` with ``class_metrics``), plus ``map_50_per_class`` (AP at IoU 0.5 per class,
    read from the precision table of the COCO evaluation) when ``class_metrics`` is set.
    """

    def __init__(
        self,
        class_metrics: bool = False,
        backend: Literal["faster_coco_eval", "pycocotools"] = "faster_coco_eval",
        **kwargs: Any,
    ) -> None:
        saved = _mean_ap._TORCHVISION_AVAILABLE
        _mean_ap._TORCHVISION_AVAILABLE = True  # only update() below used it (box_convert)
        try:
            super().__init__(
                box_format="xyxy",
                iou_type="bbox",
                class_metrics=class_metrics,
                extended_summary=class_metrics,
                backend=backend,
                **kwargs,
            )
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"mAP needs {backend}: {exc}",
                hint="pip install faster-coco-eval (engine-vision depends on it) or pycocotools",
            ) from None
        finally:
            _mean_ap._TORCHVISION_AVAILABLE = saved
        missing = [s for s in _STATES if s not in self._defaults]
        if missing:  # a torchmetrics whose states were renamed: fail loudly rather than measure nothing
            raise RuntimeError(f"torchmetrics {_mean_ap.__name__} has no states {missing}; pin torchmetrics<2")

    def update(self, preds: list[dict[str, torch.Tensor]], target: list[dict[str, torch.Tensor]]) -> None:
        """Add a batch: ``preds`` of ``{"boxes" (xyxy), "scores", "labels"}``, ``target`` of ``{"boxes", "labels"}``."""
        _input_validator(preds, target, iou_type=self.iou_type)
        limit = self.max_detection_thresholds[-1]
        for item in preds:
            boxes, scores, labels = item["boxes"], item["scores"], item["labels"]
            if len(scores) > limit:  # as torchmetrics: keep the best max_detection_thresholds[-1]
                keep = scores.argsort(descending=True)[:limit]
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            self.detection_box.append(_xywh(boxes))
            self.detection_labels.append(labels)
            self.detection_scores.append(scores)
        for item in target:
            labels = item["labels"]
            self.groundtruth_box.append(_xywh(item["boxes"]))
            self.groundtruth_labels.append(labels)
            self.groundtruth_crowds.append(item.get("iscrowd", torch.zeros_like(labels)))
            self.groundtruth_area.append(item.get("area", torch.zeros_like(labels)))

    def compute(self) -> dict[str, Any]:
        result = dict(super().compute())
        precision = result.pop("precision", None)
        for key in ("recall", "scores", "ious"):
            result.pop(key, None)
        if self.class_metrics and isinstance(precision, torch.Tensor) and precision.dim() == 5:
            # precision: (iou thresholds, recall thresholds, classes, areas, max detections)
            at50 = precision[0, :, :, 0, -1]  # IoU 0.5, every area, the largest max-detections
            valid = at50 > -1
            ap = (at50.clamp_min(0) * valid).sum(0) / valid.sum(0).clamp_min(1)
            result["map_50_per_class"] = torch.where(valid.any(0), ap, torch.full_like(ap, -1.0))
        return result
