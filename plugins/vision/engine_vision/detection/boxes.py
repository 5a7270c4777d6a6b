"""Boxes on plain torch: areas, IoU, generalised IoU and class-aware (batched) non-maximum suppression.

Boxes are ``(..., 4)`` tensors ``[x1, y1, x2, y2]`` in pixels (``x2 > x1``, ``y2 > y1`` for a
real box). Nothing here needs torchvision, which cannot be installed beside every torch.
"""

from __future__ import annotations

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of ``(..., 4)`` boxes (0 for degenerate ones)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp_min(0) * (boxes[..., 3] - boxes[..., 1]).clamp_min(0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(N, M)`` of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp_min(1e-9)


def aligned_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of corresponding boxes ``a[i]``, ``b[i]`` (both ``(..., 4)``)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    return inter / (box_area(a) + box_area(b) - inter).clamp_min(1e-9)


def aligned_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU (Rezatofighi et al. 2019) of corresponding boxes: IoU minus the empty part of the hull."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    union = (box_area(a) + box_area(b) - inter).clamp_min(1e-9)
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp_min(0).prod(-1)
    return inter / union - (hull - union) / hull.clamp_min(1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_keep: int | None = None) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    A box is dropped when a kept box with a higher score overlaps it by more than
    ``iou_threshold``; the scan stops once ``max_keep`` boxes are kept. The overlaps are one
    IoU matrix computed with torch; the greedy scan over it runs on a numpy copy (a few
    microseconds a box, where a torch call per box would cost tens).
    """
    import numpy as np

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    b = boxes[order].float()
    overlaps = (box_iou(b, b) > iou_threshold).cpu().numpy()
    alive = np.ones(len(b), dtype=bool)
    limit = len(b) if max_keep is None else max_keep
    kept: list[int] = []
    for i in range(len(b)):
        if alive[i]:
            kept.append(i)
            if len(kept) >= limit:
                break
            alive &= ~overlaps[i]
    return order[torch.tensor(kept, dtype=torch.long, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    iou_threshold: float,
    max_keep: int | None = None,
) -> torch.Tensor:
    """NMS within each label: boxes of different labels never suppress each other (indices, by score)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # Shift each label's boxes into a region of its own, so one NMS call handles every class.
    span = float(boxes.max() - boxes.min()) + 1.0
    shifted = boxes - boxes.min() + (labels.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)


def clip_boxes(boxes: torch.Tensor, height: float, width: float) -> torch.Tensor:
    """Boxes clipped to the image ``[0, width] x [0, height]``."""
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)
