"""Generate a small image-folder dataset of coloured shapes (for demos and tests)."""

from __future__ import annotations

from pathlib import Path

SHAPES = ("circle", "square", "triangle", "cross")


def write_shapes(
    root: str | Path, per_class: int = 50, size: int = 32, classes: int = 3, grey: bool = False, seed: int = 0
) -> Path:
    """Write ``root/<shape>/<i>.png`` images: a randomly placed, sized and coloured shape on a noisy background."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    root = Path(root)
    for shape in SHAPES[:classes]:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            background = rng.integers(0, 90, size=3)
            noise = rng.integers(-20, 21, size=(size, size, 3))
            pixels = np.clip(background[None, None, :] + noise, 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels, "RGB")
            draw = ImageDraw.Draw(img)
            r = rng.uniform(0.22, 0.38) * size
            cx, cy = rng.uniform(r, size - r, size=2)
            colour = tuple(int(v) for v in rng.integers(140, 256, size=3))
            if shape == "circle":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            elif shape == "square":
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
            elif shape == "triangle":
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
            else:
                t = max(1.0, r / 3)
                draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=colour)
                draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=colour)
            (img.convert("L") if grey else img).save(folder / f"{i:04d}.png")
    return root
