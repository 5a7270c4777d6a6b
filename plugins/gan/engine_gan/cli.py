"""`engine sample RUN`: draw a trained GAN's samples as a PNG (image grid or 2-D scatter plot)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from engine import EngineError

_TASKS = ("gan.adversarial", "adversarial")


def sample(args: argparse.Namespace) -> int:
    """Handler of `engine sample`."""
    from engine.runs import open_run

    run = open_run(args.run)
    task_name = (run.config.get("task") or {}).get("name")
    if task_name not in _TASKS:
        raise EngineError(
            f"{run.path} is a '{task_name}' run, not a GAN run",
            hint="engine sample takes the run directory of a task=gan.adversarial run",
        )
    if args.n is not None and not 1 <= args.n <= 100_000:
        raise EngineError(f"--n must be between 1 and 100000, got {args.n}")
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        raise EngineError(f"--out must name a .png file, got {out}")
    if not out.parent.exists():
        raise EngineError(f"output folder {out.parent} does not exist")
    task = run.task(args.checkpoint)
    shape = list(run.facts.get("input_shape") or [])
    is_image = len(shape) == 3 and shape[0] in (1, 3)
    n = args.n if args.n is not None else (64 if is_image else 2000)
    samples = task.sample(n, seed=args.seed, ema=not args.no_ema)
    if is_image:
        picture = image_grid(samples, run.facts.get("preprocessing"), args.scale)
        what = f"a grid of {n} images"
    elif samples[0].numel() == 2:
        picture = scatter(samples.reshape(n, 2), run.facts.get("modes"), run.facts.get("mode_std"))
        what = f"a scatter plot of {n} points"
    else:
        raise EngineError(
            f"cannot draw samples of shape {list(samples.shape[1:])}: engine sample draws images ([C, H, W], "
            "C = 1 or 3) and 2-D points",
        )
    picture.save(out)
    print(f"wrote {out}: {what} from {run.path} ({args.checkpoint} checkpoint)")
    return 0


def image_grid(samples: Any, preprocessing: dict[str, Any] | None, scale: int | None = None) -> Any:
    """A Pillow image: ``samples`` (N, C, H, W) de-normalised to [0, 1] and tiled, each pixel ``scale`` px."""
    import numpy as np
    import torch
    from PIL import Image

    x = samples.detach().float().cpu()
    pre = preprocessing if isinstance(preprocessing, dict) else {}
    if "mean" in pre and "std" in pre:
        mean = torch.as_tensor(pre["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(pre["std"], dtype=torch.float32).view(1, -1, 1, 1)
        x = x * std + mean
        if "value_range" in pre and "scale" not in pre:
            lo, hi = pre["value_range"]
            x = (x - lo) / (hi - lo)
    else:
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    x = x.clamp(0, 1)
    n, c, h, w = x.shape
    scale = scale or max(1, math.ceil(48 / max(h, w)))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = 2
    grid = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 0.5)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i]
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def scatter(points: Any, modes: list[list[float]] | None, std: float | None, size: int = 640) -> Any:
    """A Pillow image: 2-D ``points`` (blue) over the mixture's ``modes`` (red crosses, 3-std circles)."""
    import torch
    from PIL import Image, ImageDraw

    p = points.detach().float().cpu()
    centres = torch.as_tensor(modes, dtype=torch.float32) if modes else torch.empty(0, 2)
    allp = torch.cat([p[torch.isfinite(p).all(1)], centres])
    lo, hi = allp.min(0).values, allp.max(0).values
    span = float((hi - lo).max().clamp_min(1e-3)) * 1.15
    mid = (lo + hi) / 2
    margin = 30

    def px(x: float, y: float) -> tuple[float, float]:
        u = (x - float(mid[0])) / span + 0.5
        v = (y - float(mid[1])) / span + 0.5
        return margin + u * (size - 2 * margin), size - margin - v * (size - 2 * margin)

    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([margin, margin, size - margin, size - margin], outline=(160, 160, 160))
    for x, y in p.tolist():
        u, v = px(x, y)
        d.ellipse([u - 1.5, v - 1.5, u + 1.5, v + 1.5], fill=(30, 90, 200))
    for x, y in centres.tolist():
        u, v = px(x, y)
        if std:
            r = 3 * std / span * (size - 2 * margin)
            d.ellipse([u - r, v - r, u + r, v + r], outline=(220, 30, 30))
        d.line([u - 6, v, u + 6, v], fill=(220, 30, 30), width=2)
        d.line([u, v - 6, u, v + 6], fill=(220, 30, 30), width=2)
    d.text((margin, 8), f"{len(p)} samples (blue); modes (red) with 3-std circles", fill=(0, 0, 0))
    d.text(
        (margin, size - margin + 8),
        f"x: {float(mid[0] - span / 2):.2f} .. {float(mid[0] + span / 2):.2f}",
        fill=(0, 0, 0),
    )
    return img
