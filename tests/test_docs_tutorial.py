"""The user tutorial (docs/tutorial.md) cannot rot: its commands parse and its quick ones print what it shows (fast),
and all of them run in order, each printing what the page shows, serving and curl included (slow).

The page's ``console`` blocks are read as a script: a ``$ `` line is a command, the lines after it what it prints.
Shown output is compared line by line with the real output, in order (lines in between may be left out, and ``...``
marks where): numbers may differ, runs of spaces count as one (columns move with the numbers), nothing else may.
A command expected to fail shows ``error:`` and must exit 2. ``python`` blocks whose first line is ``# NAME.py`` are
files the page asks to save.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from engine._plugins.registry import clear_registries

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
#: What the page tells a newcomer to do first; the test's environment is that already.
SETUP = ("make setup", "source .venv/bin/activate")
#: The plugins the tutorial uses (tests/ switches installed plugins off; this test turns them back on).
NEEDED = {"vision", "deploy", "experiments", "explain"}
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SERVE_PORT = "8000"  # the port the page's curl commands use (serve's default)


@dataclass
class Step:
    command: str
    shown: list[str]  # the output lines the page shows

    @property
    def fails(self) -> bool:
        return any(line.startswith("error:") for line in self.shown)


def steps(text: str | None = None) -> list[Step]:
    """Every ``$ `` command of the page's console blocks, in order, with the output shown under it."""
    out: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", text or TUTORIAL.read_text(), flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append(Step(line[2:].strip(), []))
            elif out and line.strip():
                out[-1].shown.append(line)
    return out


def files() -> dict[str, str]:
    """``{name: code}`` of the python blocks the page asks to save (first line ``# name.py``)."""
    found = {}
    for block in re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.S):
        first = block.splitlines()[0]
        if re.fullmatch(r"# [\w.-]+\.py", first):
            found[first[2:]] = block
    return found


def _pattern(line: str) -> re.Pattern[str]:
    parts = NUMBER.split(" ".join(line.split()))
    return re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?".join(re.escape(p) for p in parts))


def check_output(step: Step, real: str) -> None:
    """Each line the page shows appears in ``real``, in the same order (numbers may differ)."""
    lines = [" ".join(line.split()) for line in real.splitlines()]
    at = 0
    for shown in step.shown:
        if shown.strip() == "...":
            continue
        pattern = _pattern(shown)
        found = next((i for i in range(at, len(lines)) if pattern.fullmatch(lines[i])), None)
        assert found is not None, (
            f"docs/tutorial.md shows, for `{step.command}`:\n  {shown}\nbut it printed (after the lines matched "
            f"before):\n" + "\n".join(lines[at:]) + "\nupdate the page (or fix the command)"
        )
        at = found + 1


def _installed() -> set[str]:
    return {ep.name for ep in entry_points(group="engine.plugins")}


@pytest.fixture
def plugins_on(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = NEEDED - _installed()
    if missing:
        pytest.skip(f"the tutorial uses the plugins {sorted(missing)}: not installed (make setup installs them)")
    monkeypatch.delenv("ENGINE_DISABLE_PLUGINS", raising=False)
    clear_registries()


def test_the_tutorial_is_reached_from_the_home_page_and_starts_from_setup() -> None:
    assert "(tutorial.md)" in (ROOT / "docs" / "index.md").read_text()
    assert "tutorial.md" in (ROOT / "mkdocs.yml").read_text()
    commands = [s.command for s in steps()]
    assert commands[: len(SETUP)] == list(SETUP)
    assert {"run", "evaluate", "report", "deploy", "predict", "serve", "explain"} <= {
        c.split()[1] for c in commands if c.startswith("engine ") and len(c.split()) > 1
    }
    assert set(files()) == {"request.py"}
    for name, code in files().items():
        compile(code, name, "exec")


def test_check_output_reads_numbers_as_numbers_and_nothing_else() -> None:
    step = Step("engine x", ["metric   final  best", "...", "test/accuracy *  -  0.9944", "size  1.1 MiB  (1.01x)"])
    check_output(step, "metric final best\nnoise\ntest/accuracy *     -    0.9638\nsize 297.4 MiB (0.5x)\n")
    with pytest.raises(AssertionError, match="test/accuracy"):
        check_output(step, "metric final best\ntest/accuracy 0.9638\nsize 1.1 MiB (1.01x)\n")
    with pytest.raises(AssertionError, match="size"):
        check_output(step, "metric final best\ntest/accuracy * - 0.9\nsize 297.4 KiB (0.5x)\n")
    with pytest.raises(AssertionError, match="test/accuracy"):  # order counts
        check_output(step, "test/accuracy * - 0.9\nmetric final best\nsize 1.1 MiB (1.01x)\n")


def _quick(step: Step) -> bool:
    """Torch-free commands that need no trained run: run in-process by the fast test."""
    c = step.command
    return c.startswith(("engine --version", "engine plugins list", "engine components ")) or (
        c.startswith("engine run ") and ("--dry-run" in c or step.fails)
    )


def test_every_engine_command_parses_and_the_quick_ones_print_what_the_page_shows(plugins_on, cli) -> None:
    from engine._cli.main import build_parser
    from engine._plugins.registry import get_registry

    parser, _ = build_parser(get_registry().manager)
    engine_steps = [s for s in steps() if s.command.startswith("engine ")]
    assert sum(_quick(s) for s in engine_steps) >= 5
    for step in engine_steps:
        argv = shlex.split(step.command)[1:]
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --version ends parsing with 0
            assert exc.code == 0, f"`{step.command}` does not parse (exit {exc.code})"
            args, extra = argparse.Namespace(), []
        assert not extra or ("items" in vars(args) and all("=" in e for e in extra)), (step.command, extra)
        if step.command.startswith("engine run ") and not _quick(step):
            dry = cli(*argv, "--dry-run")
            assert dry.returncode == 0, (step.command, dry.stderr)
        if _quick(step):
            result = cli(*argv)
            assert result.returncode == (2 if step.fails else 0), (step.command, result.stderr)
            check_output(step, result.stdout + result.stderr)


# --------------------------------------------------------------------------- the whole tutorial, for real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, server: subprocess.Popen[bytes], log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"engine serve exited {server.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"engine serve not ready in {seconds} s:\n{log.read_text()}")


@pytest.mark.slow
def test_the_tutorial_runs_as_written(plugins_on, tmp_path: Path) -> None:
    """Every command of the page, in order, in a fresh directory: each exits as shown and prints what is shown."""
    import shutil

    assert shutil.which("curl"), "the tutorial sends requests with curl: install it (apt-get install curl)"
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_DISABLE_PLUGINS", "ENGINE_RUN_DIR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # engine, python: this venv's
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleaved as a terminal shows them
    for name, code in files().items():
        (tmp_path / name).write_text(code)
    port = _free_port()
    server: subprocess.Popen[bytes] | None = None
    serve_step, serve_log = None, tmp_path / "serve.log"
    try:
        for step in steps():
            if step.command in SETUP:
                continue
            command = step.command.replace(f"localhost:{SERVE_PORT}", f"127.0.0.1:{port}")
            if command.startswith("engine serve "):  # serves until stopped: in the background, bounded
                assert server is None, "one server at a time"
                with serve_log.open("wb") as log:
                    server = subprocess.Popen(
                        [*shlex.split(command), "--port", str(port)],
                        cwd=tmp_path,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                serve_step = step
                _wait_ready(port, server, serve_log)
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=1200,
            )
            expected = 2 if step.fails else 0
            assert done.returncode == expected, f"`{step.command}` exited {done.returncode}:\n{done.stdout[-3000:]}"
            check_output(step, done.stdout)
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)  # Ctrl-C, as the page says
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    assert serve_step is not None, "the tutorial serves the model"
    check_output(serve_step, serve_log.read_text())
    for made in (
        "runs/digits/report/curves.png",
        "runs/digits/deploy/onnx/model.onnx",
        "runs/digits/explain/integrated_gradients/000-seven.png",
    ):
        assert (tmp_path / made).is_file(), made
