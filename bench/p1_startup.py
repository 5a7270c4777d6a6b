"""P1: how long users wait for the commands that must not import torch.

Median wall time of ≥ 5 runs of `engine plugins list`, `engine components list`,
`engine --help` and `engine run … --dry-run`, beside `python -c "import lightning"`
for scale; and a check that none of the engine commands imported torch.
Target: ≤ 0.20 s each on a 2-core machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
ENGINE = str(Path(sys.executable).with_name("engine"))
COMMANDS = {
    "engine plugins list": [ENGINE, "plugins", "list"],
    "engine components list": [ENGINE, "components", "list"],
    "engine --help": [ENGINE, "--help"],
    "engine run core/mlp-synthetic --dry-run": [ENGINE, "run", "core/mlp-synthetic", "--dry-run"],
    "engine runs list (engine-experiments)": [ENGINE, "runs", "list"],
    'python -c "import lightning"': [sys.executable, "-c", "import lightning"],
}
PROBE = (
    "import sys\nfrom engine._cli.main import main\n"
    "main({argv!r})\n"
    "print('TORCH-IMPORTED' if 'torch' in sys.modules else 'torch-free', file=sys.stderr)"
)


def median_wall(cmd: list[str]) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def imports_torch(argv: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    return "TORCH-IMPORTED" in out.stderr


def main() -> None:
    print(f"P1: median wall time of {REPEATS} runs (target ≤ 0.20 s, no torch import)")
    print(f"{'command':<44} {'median s':>9}  torch imported")
    for label, cmd in COMMANDS.items():
        seconds = median_wall(cmd)
        torch = "-" if cmd[0] == sys.executable else ("YES" if imports_torch(cmd[1:]) else "no")
        print(f"{label:<44} {seconds:>9.3f}  {torch}")


if __name__ == "__main__":
    main()
