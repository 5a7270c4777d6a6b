"""``vision.detector``: a backbone from ``vision.resnet`` or ``vision.cnn``, a light feature pyramid, one shared head.

One-stage and anchor-free, as FCOS (Tian et al. 2019): every location of every pyramid level
predicts class logits, a centre-ness logit and its distances to the four sides of a box.
``forward`` returns one tensor ``(N, A, 5 + num_classes)`` over the ``A`` locations of all
levels: ``[x1, y1, x2, y2, centerness_logit, class_logit_0, ...]``, boxes already decoded to
input pixels. That is the network's whole output (what ``engine deploy`` exports); scoring,
thresholds and NMS are post-processing (`engine_vision.detection.task.DetectionTask.postprocess`).

The backbone's modules keep the names they have in ``vision.resnet`` (``stem``, ``stages``) and
``vision.cnn`` (``features``), so ``model.init_from=RUN`` loads a classification run's backbone
into the detector (its classifier is reported unexpected, the pyramid and head missing).
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

import torch
import torch.nn.functional as F
from annotated_types import Ge
from torch import nn

from engine import ConfigError
from engine.layers import norm_layer
from engine_vision.models import ResNet, SmallCNN, _check_input, _shape

#: Columns of the output before the class logits: box (4) and centre-ness (1).
BOX_COLUMNS = 5


class Anchors(NamedTuple):
    """The network's output with the locations it was predicted at (what training needs)."""

    outputs: torch.Tensor  # (N, A, 5 + C)
    points: torch.Tensor  # (A, 2) x, y in input pixels
    strides: torch.Tensor  # (A,) the level's stride in pixels
    levels: torch.Tensor  # (A,) level index, 0 = finest


class Scale(nn.Module):
    """A learnable scalar (one per pyramid level, for the box distances)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Pyramid(nn.Module):
    """A feature pyramid (Lin et al. 2017): 1x1 laterals, nearest-neighbour top-down sums, 3x3 outputs.

    ``extra`` stride-2 convolutions on the coarsest output add coarser levels (FCOS's P6, P7).
    """

    def __init__(self, channels: list[int], width: int, extra: int = 0) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.output = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in channels)
        self.extra = nn.ModuleList(nn.Conv2d(width, width, 3, stride=2, padding=1) for _ in range(extra))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(f) for conv, f in zip(self.lateral, features, strict=True)]
        for i in range(len(laterals) - 2, -1, -1):
            laterals[i] = laterals[i] + F.interpolate(laterals[i + 1], size=laterals[i].shape[-2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.output, laterals, strict=True)]
        for i, conv in enumerate(self.extra):
            outs.append(conv(outs[-1] if i == 0 else F.relu(outs[-1])))
        return outs


class Head(nn.Module):
    """The head shared by every level: a classification tower and a box tower of ``convs`` 3x3 conv-norm-ReLU."""

    def __init__(self, width: int, num_classes: int, convs: int, norm: str, levels: int) -> None:
        super().__init__()

        def tower() -> nn.Sequential:
            layers: list[nn.Module] = []
            for _ in range(convs):
                layers += [nn.Conv2d(width, width, 3, padding=1, bias=norm == "none"), norm_layer(norm, width)]
                layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_out = nn.Conv2d(width, num_classes, 3, padding=1)
        self.box_out = nn.Conv2d(width, 4, 3, padding=1)
        self.ctr_out = nn.Conv2d(width, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in range(levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_out.bias, -4.595)  # prior probability 0.01 (RetinaNet): stable focal loss

    def forward(self, x: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c, b = self.cls_tower(x), self.box_tower(x)
        return self.cls_out(c), F.softplus(self.scales[level](self.box_out(b))), self.ctr_out(b)


class Detector(nn.Module):
    """One-stage anchor-free detector (FCOS-style): backbone, feature pyramid, shared head.

    Args:
        input_shape: [channels, height, width] of one image (from the data).
        num_classes: number of object classes (from the data).
        backbone: resnet (the blocks of vision.resnet) or cnn (the stages of vision.cnn).
        depth: ResNet depth: 18 or 34 (basic blocks) or 50 (bottleneck blocks).
        width: channels of the backbone's first stage (doubled by each later stage).
        stem: ResNet stem: imagenet (7x7 stride 2 + max-pool: 4x smaller), small (3x3 stride 1) or
            auto (small below 96 px).
        stages: stages of the cnn backbone (each halves the map).
        levels: backbone stages feeding the pyramid, 1 = the first (finest); e.g. [1, 2, 3] of a ResNet with
            the imagenet stem gives levels of stride 4, 8 and 16.
        extra_levels: coarser levels added by stride-2 convolutions on the coarsest one (FCOS's P6, P7).
        fpn_width: channels of the pyramid and the head.
        head_convs: 3x3 convolutions in each of the head's two towers (classification, box).
        norm: normalisation in the backbone: batch, group or none.
        head_norm: normalisation in the head's towers: group (as FCOS), batch or none.
        upsample: enlarge the input by this factor inside the backbone (bilinear); boxes stay in input pixels.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        backbone: Literal["resnet", "cnn"] = "resnet",
        depth: Literal[18, 34, 50] = 18,
        width: Annotated[int, Ge(1)] = 16,
        stem: Literal["auto", "imagenet", "small"] = "imagenet",
        stages: Annotated[int, Ge(1)] = 4,
        levels: list[int] = [1, 2, 3],  # noqa: B006 - read statically as the default; never mutated
        extra_levels: Annotated[int, Ge(0)] = 0,
        fpn_width: Annotated[int, Ge(1)] = 32,
        head_convs: Annotated[int, Ge(0)] = 2,
        norm: Literal["batch", "group", "none"] = "batch",
        head_norm: Literal["batch", "group", "none"] = "group",
        upsample: Annotated[int, Ge(1)] = 1,
    ) -> None:
        super().__init__()
        c, h, w = _shape(input_shape, "vision.detector")
        if num_classes < 1:
            raise ConfigError(f"vision.detector needs num_classes >= 1, got {num_classes}")
        self.input_shape = (c, h, w)
        self.num_classes = int(num_classes)
        self.backbone = backbone
        levels = sorted({int(v) for v in levels})
        available = 4 if backbone == "resnet" else stages
        if not levels or levels[0] < 1 or levels[-1] > available:
            raise ConfigError(
                f"vision.detector levels must be backbone stages between 1 and {available}, got {levels}",
                hint="e.g. model.levels=[1,2,3]",
            )
        self.levels = levels
        if backbone == "resnet":
            net = ResNet(input_shape, 1, depth=depth, width=width, stem=stem, upsample=upsample, norm=norm)
            self.stem = net.stem
            self.stages = nn.Sequential(*list(net.stages)[: levels[-1]])
            channels = [net.stage_outputs[i - 1][0] for i in levels]
            self.taps: list[int] = []
        else:
            cnn = SmallCNN(input_shape, 1, width=width, stages=stages, upsample=upsample, norm=norm)
            ends = [cnn.stage_outputs[i - 1][0] for i in levels]
            self.features = nn.Sequential(*list(cnn.features)[: ends[-1]])
            channels = [cnn.stage_outputs[i - 1][1] for i in levels]
            self.taps = ends
        self.neck = Pyramid(channels, fpn_width, extra_levels)
        self.head = Head(fpn_width, num_classes, head_convs, head_norm, len(levels) + extra_levels)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        if self.backbone == "resnet":
            y = self.stem(x)
            for i, stage in enumerate(self.stages):
                y = stage(y)
                if i + 1 in self.levels:
                    out.append(y)
            return out
        y = x
        for i, layer in enumerate(self.features):
            y = layer(y)
            if i + 1 in self.taps:
                out.append(y)
        return out

    def detect(self, x: torch.Tensor) -> Anchors:
        """The output with each location's point, stride and level (see `Anchors`)."""
        _check_input(x, self.input_shape, "vision.detector", exact=False)
        height, width = x.shape[-2], x.shape[-1]
        outputs, points, strides, levels = [], [], [], []
        for level, feature in enumerate(self.neck(self._features(x))):
            logits, distances, ctr = self.head(feature, level)
            h, w = feature.shape[-2], feature.shape[-1]
            sy, sx = height / h, width / w
            ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) * sy
            xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) * sx
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            px, py = px.reshape(1, -1), py.reshape(1, -1)
            d = distances.flatten(2)  # (N, 4, h*w): left, top, right, bottom in strides
            boxes = torch.stack([px - d[:, 0] * sx, py - d[:, 1] * sy, px + d[:, 2] * sx, py + d[:, 3] * sy], -1)
            outputs.append(torch.cat([boxes, ctr.flatten(2).transpose(1, 2), logits.flatten(2).transpose(1, 2)], -1))
            points.append(torch.stack([px[0], py[0]], -1))
            strides.append(torch.full((h * w,), (sx * sy) ** 0.5, device=x.device, dtype=x.dtype))
            levels.append(torch.full((h * w,), level, device=x.device, dtype=torch.long))
        return Anchors(torch.cat(outputs, 1), torch.cat(points), torch.cat(strides), torch.cat(levels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, A, 5 + num_classes)``: decoded boxes (x1, y1, x2, y2), centre-ness logit, class logits."""
        return self.detect(x).outputs
