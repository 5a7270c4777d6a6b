"""Object detection for engine-vision: one-stage, anchor-free (FCOS-style) on plain torch.

- `engine_vision.detection.boxes`: box arithmetic, IoU / GIoU and batched NMS written on torch
  (torchvision is not needed);
- `engine_vision.detection.model`: ``vision.detector``, a ResNet or small-CNN backbone, a light
  feature pyramid and one head shared by every level;
- `engine_vision.detection.targets` and `engine_vision.detection.losses`: FCOS targets
  (centre sampling, a size range per level), focal / quality-focal classification, GIoU / L1 boxes;
- `engine_vision.detection.task`: ``vision.detection``, the LightningModule (mAP with torchmetrics);
- `engine_vision.detection.data`, `engine_vision.detection.coco`,
  `engine_vision.detection.shapes`: ``vision.coco``, ``vision.voc``, ``vision.shapes_detect``
  and their box-aware augmentation (`engine_vision.detection.augment`).

Importing this package imports nothing heavy; the modules import torch themselves.
"""
