"""FCOS targets and the detection losses: focal / quality-focal classification, GIoU / L1 boxes, centre-ness.

Targets (Tian et al. 2019, with centre sampling): a location is *positive* for a ground-truth
box when it lies inside the box and within ``radius`` strides of its centre, and the largest of
its four distances to the box's sides falls in its level's size range (level ``l`` of stride
``s_l`` takes ``[8 s_{l-1}, 8 s_l]``; the finest starts at 0, the coarsest has no upper bound).
A location claimed by several boxes takes the smallest. Everything is batched over images
(boxes padded per batch), with no Python loop over locations or boxes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from engine_vision.detection.boxes import aligned_giou, aligned_iou, box_area

#: Level ``l`` regresses distances up to ``RANGE_FACTOR * stride_l`` (FCOS: 64 px at stride 8).
RANGE_FACTOR = 8.0


class Targets(NamedTuple):
    labels: torch.Tensor  # (N, A) class index, -1 for background
    boxes: torch.Tensor  # (N, A, 4) the assigned ground-truth box (zeros for background)


def pad_targets(targets: list[dict[str, torch.Tensor]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``{"boxes", "labels"}`` -> boxes ``(N, M, 4)`` and labels ``(N, M)`` (-1 pads)."""
    m = max([len(t["labels"]) for t in targets] + [1])
    boxes = torch.zeros(len(targets), m, 4, device=device)
    labels = torch.full((len(targets), m), -1, dtype=torch.long, device=device)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        if n:
            boxes[i, :n] = t["boxes"].to(device, torch.float32)
            labels[i, :n] = t["labels"].to(device, torch.long)
    return boxes, labels


def assign(
    points: torch.Tensor,
    strides: torch.Tensor,
    levels: torch.Tensor,
    targets: list[dict[str, torch.Tensor]],
    radius: float = 1.5,
) -> Targets:
    """FCOS assignment of every location to a ground-truth box or the background (see the module doc)."""
    gt, gl = pad_targets(targets, points.device)  # (N, M, 4), (N, M)
    px, py = points[None, :, None, 0], points[None, :, None, 1]  # (1, A, 1)
    x1, y1, x2, y2 = (gt[:, None, :, k] for k in range(4))  # (N, 1, M)
    ltrb = torch.stack([px - x1, py - y1, x2 - px, y2 - py], -1)  # (N, A, M, 4)
    inside = ltrb.min(-1).values > 0
    if radius > 0:
        r = (strides * radius)[None, :, None]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        near = (
            (px > torch.maximum(cx - r, x1))
            & (px < torch.minimum(cx + r, x2))
            & (py > torch.maximum(cy - r, y1))
            & (py < torch.minimum(cy + r, y2))
        )
        inside = inside & near
    # size range of each location's level
    count = int(levels.max()) + 1 if levels.numel() else 1
    level_stride = torch.zeros(count, device=points.device, dtype=strides.dtype).scatter_reduce(
        0, levels, strides, reduce="amax", include_self=False
    )
    upper = level_stride * RANGE_FACTOR
    lower = torch.cat([upper.new_zeros(1), upper[:-1]])
    upper[-1] = float("inf")
    reach = ltrb.max(-1).values
    fits = (reach >= lower[levels][None, :, None]) & (reach <= upper[levels][None, :, None])
    ok = inside & fits & (gl[:, None, :] >= 0)
    area = box_area(gt)[:, None, :].expand_as(ok).masked_fill(~ok, float("inf"))
    smallest, index = area.min(-1)  # (N, A)
    positive = torch.isfinite(smallest)
    labels = torch.where(positive, gl.gather(1, index), torch.full_like(index, -1))
    boxes = gt.gather(1, index[..., None].expand(-1, -1, 4)) * positive[..., None]
    return Targets(labels, boxes)


def centerness(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """FCOS centre-ness of each point in its box: sqrt(min(l,r)/max(l,r) * min(t,b)/max(t,b))."""
    left, top = points[..., 0] - boxes[..., 0], points[..., 1] - boxes[..., 1]
    right, bottom = boxes[..., 2] - points[..., 0], boxes[..., 3] - points[..., 1]
    lr = torch.stack([left, right], -1).clamp_min(1e-6)
    tb = torch.stack([top, bottom], -1).clamp_min(1e-6)
    return ((lr.min(-1).values / lr.max(-1).values) * (tb.min(-1).values / tb.max(-1).values)).sqrt()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), summed; ``target`` in {0, 1} like ``logits``."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    weight = (alpha * target + (1 - alpha) * (1 - target)) if alpha >= 0 else 1.0
    return (weight * ce * (1 - pt) ** gamma).sum()


def quality_focal_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Quality focal loss (Li et al. 2020, GFL), summed: ``target`` is the IoU at the true class, 0 elsewhere."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (ce * (p - target).abs() ** beta).sum()


def detection_loss(
    outputs: torch.Tensor,
    points: torch.Tensor,
    strides: torch.Tensor,
    targets: Targets,
    num_classes: int,
    classification: str = "focal",
    box_loss: str = "giou",
    box_weight: float = 1.0,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> dict[str, torch.Tensor]:
    """The losses of a batch: ``{"loss", "cls", "box", "ctr"}`` (each normalised by the positives)."""
    boxes, ctr_logit, logits = outputs[..., :4], outputs[..., 4], outputs[..., 5:]
    positive = targets.labels >= 0
    n_pos = positive.sum().clamp_min(1).to(outputs.dtype)
    onehot = F.one_hot(targets.labels.clamp_min(0), num_classes).to(logits.dtype) * positive[..., None]
    pts = points[None].expand(len(outputs), -1, -1)
    pos_pred, pos_gt, pos_pts = boxes[positive], targets.boxes[positive], pts[positive]
    if classification == "quality_focal":
        quality = torch.zeros_like(logits)
        iou = aligned_iou(pos_pred.detach(), pos_gt).clamp(0, 1)
        quality[positive] = onehot[positive] * iou[:, None]
        cls = quality_focal_loss(logits, quality, beta=gamma) / n_pos
    else:
        cls = focal_loss(logits, onehot, alpha, gamma) / n_pos
    ctr_target = centerness(pos_pts, pos_gt)
    weight = ctr_target.sum().clamp_min(1e-6)
    box = outputs.new_zeros(())
    if "giou" in box_loss:
        box = box + ((1 - aligned_giou(pos_pred, pos_gt)) * ctr_target).sum() / weight
    if "l1" in box_loss:
        s = strides[None].expand(len(outputs), -1)[positive][:, None]
        pred_d = torch.cat([pos_pts - pos_pred[:, :2], pos_pred[:, 2:] - pos_pts], -1) / s
        gt_d = torch.cat([pos_pts - pos_gt[:, :2], pos_gt[:, 2:] - pos_pts], -1) / s
        box = box + ((pred_d - gt_d).abs().sum(-1) * ctr_target).sum() / weight
    if classification == "quality_focal":
        ctr = outputs.new_zeros(())  # the classification score is the quality estimate itself
    else:
        ctr = F.binary_cross_entropy_with_logits(ctr_logit[positive], ctr_target, reduction="sum") / n_pos
    return {"loss": cls + box_weight * box + ctr, "cls": cls, "box": box, "ctr": ctr}
