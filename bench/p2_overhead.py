"""P2: does training through `engine run` cost anything over hand-written Lightning?

The same MLP, data, batch size, optimizer and number of steps are trained

  (a) through the engine: config -> registry -> built-in supervised task -> run directory, and
  (b) as the LightningModule + Trainer a user would write by hand.

A timing callback records the wall time of every training step in both; the first
steps are dropped as warm-up. The two are run alternately, several times, and the
median per-step time of each is compared. Target: a/b ≤ 1.02.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from engine._builtins.models import MLP

FEATURES, CLASSES, HIDDEN, BATCH, SAMPLES = 64, 10, [512, 512], 256, 40_000
WARMUP = 20


class StepTimer(L.Callback):
    """Wall time and process CPU time of every training step (CPU time ignores other processes' load)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.stamps.append((time.perf_counter(), time.process_time()))

    def per_step(self) -> tuple[float, float]:
        """Median wall and median CPU seconds per step, after the warm-up."""
        pairs = list(zip(self.stamps[WARMUP:], self.stamps[WARMUP + 1 :], strict=False))
        return (
            statistics.median(b[0] - a[0] for a, b in pairs),
            statistics.median(b[1] - a[1] for a, b in pairs),
        )


# ----------------------------------------------------------------------------- (a) engine


class _TimerPlugin:
    def __init__(self, timer: StepTimer) -> None:
        self.timer = timer

    from engine import hookimpl

    @hookimpl
    def engine_callbacks(self, config: dict) -> list:
        return [self.timer]


def run_engine(steps: int, root: Path, i: int) -> tuple[float, float]:
    import engine
    from engine._plugins.manager import PluginInfo

    timer = StepTimer()
    reg = engine.get_registry(fresh=True)
    reg.manager.register(_TimerPlugin(timer), PluginInfo("bench", None, None, "bench"))
    overrides = [
        "model=mlp",
        f"model.hidden={HIDDEN}",
        "model.dropout=0.1",
        "model.norm=true",
        "data=synthetic",
        f"data.num_samples={SAMPLES}",
        f"data.num_features={FEATURES}",
        f"data.num_classes={CLASSES}",
        "data.val_fraction=0.0",
        "data.test_fraction=0.0",
        f"data.batch_size={BATCH}",
        "optimizer=adamw",
        "optimizer.lr=1e-3",
        f"trainer.max_steps={steps}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"run.dir={root}",
        f"run.name=engine-{i}",
    ]
    engine.train(engine.plan(engine.compose(None, [], overrides, registry=reg), registry=reg))
    return timer.per_step()


# ----------------------------------------------------------------------------- (b) by hand


class HandModule(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        # The same network definition the engine's `mlp` builds (Linear, LayerNorm, ReLU, Dropout).
        self.model = MLP(FEATURES, CLASSES, hidden=HIDDEN, dropout=0.1, norm=True)
        self.loss = nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self.model(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def run_by_hand(steps: int, root: Path, i: int) -> tuple[float, float]:
    L.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SAMPLES, FEATURES, generator=g)
    y = torch.randint(CLASSES, (SAMPLES,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    timer = StepTimer()
    trainer = L.Trainer(
        max_steps=steps,
        callbacks=[timer],
        default_root_dir=root / f"hand-{i}",
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(HandModule(), loader)
    return timer.per_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    engine_times: list[tuple[float, float]] = []
    hand_times: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.repeats):
            engine_times.append(run_engine(args.steps, root, i))
            hand_times.append(run_by_hand(args.steps, root, i))
            (ew, ec), (hw, hc) = engine_times[-1], hand_times[-1]
            print(f"  repeat {i + 1}: wall engine {ew * 1e3:.3f} ms/step, by hand {hw * 1e3:.3f};", end="")
            print(f" CPU engine {ec * 1e3:.3f}, by hand {hc * 1e3:.3f}")
    print(f"P2: MLP {FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}, {args.steps} steps, {args.repeats} repeats")
    for j, what in enumerate(("wall", "CPU")):
        a = statistics.median(t[j] for t in engine_times)
        b = statistics.median(t[j] for t in hand_times)
        print(f"  {what:<4} (a) engine run {a * 1e3:8.3f} ms/step  (b) hand-written {b * 1e3:8.3f}  a/b {a / b:6.3f}")
    print("  target: a/b <= 1.02 (CPU time is the steadier figure on a shared machine)")


if __name__ == "__main__":
    main()
