"""Testing plugins (public; also a pytest plugin, so its fixtures are there in every test of a project).

The conformance kit (`check_plugin`, the ``engine_check`` fixture), running the engine in tests
(`train_run`, ``cli``, `run_cli`), fixtures for isolation, and recipes' quality targets.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine._cli.main import main
from engine._contract.errors import EngineError
from engine._contract.targets import Target, parse_target, parse_targets
from engine._plugins.registry import clear_registries
from engine.testing.kit import ConformanceError, check_plugin

__all__ = [
    "CliResult",
    "ConformanceError",
    "EngineError",
    "Target",
    "check_plugin",
    "cli",
    "engine_check",
    "engine_isolated",
    "full_disk",
    "one_error",
    "one_thread",
    "parse_target",
    "parse_targets",
    "plant_pickle",
    "plugin_site",
    "run_cli",
    "run_cli_imports",
    "snapshot",
    "train",
    "train_run",
]

#: What every test run adds: no progress bar, no model summary (quiet logs, faster).
QUIET = ("trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")


def train_run(
    *overrides: str,
    root: str | Path,
    recipe: str | None = None,
    name: str = "run",
    resume: str | Path | None = None,
    files: tuple[Any, ...] = (),
) -> Any:
    """Compose, plan and train a quiet run into ``root/name``; the `RunResult`."""
    import engine

    config = engine.compose(recipe, files, [*QUIET, *overrides, f"run.dir={root}", f"run.name={name}"])
    return engine.train(engine.plan(config), resume=resume)


@dataclass
class CliResult:
    """What the ``engine`` command returned and printed (like ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Any:
    """Run the installed ``engine`` command in a subprocess: its ``CompletedProcess`` (text, 200-column tables)."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("engine")), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=900,
    )


def run_cli_imports(*args: str, env: dict[str, str] | None = None) -> tuple[Any, bool]:
    """Run ``python -X importtime -m engine ARGS``: its ``CompletedProcess`` (the import-time lines removed from
    stderr) and whether torch was imported: for "this mistake is reported before torch loads" tests."""
    command = [sys.executable, "-X", "importtime", "-m", "engine", *args]
    r = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    timings = [line for line in r.stderr.splitlines() if line.startswith("import time:")]
    r.stderr = "\n".join(line for line in r.stderr.splitlines() if not line.startswith("import time:"))
    return r, any(line.rsplit("|", 1)[-1].strip() == "torch" for line in timings)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(*args) -> CliResult``: the ``engine`` command in this process (``--help`` and argparse's usage
    errors too: their exit code is returned)."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse ends --help and usage errors with sys.exit
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def train() -> Any:
    """``train(*overrides, root=..., recipe=None, name="run", resume=None) -> RunResult`` (`train_run`)."""
    return train_run


@pytest.fixture(scope="session")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for the session (tiny models run faster); use it from a conftest's autouse fixture."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def engine_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Fresh registries; a cache and a settings directory of the test's own (``ENGINE_CACHE_DIR``, ``ENGINE_HOME``)."""
    clear_registries()
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path / "engine-cache"))
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "engine-home"))
    monkeypatch.delenv("ENGINE_RUN_DIR", raising=False)
    monkeypatch.delenv("ENGINE_RUNS_DIR", raising=False)
    monkeypatch.delenv("ENGINE_DISABLE_PLUGINS", raising=False)
    yield tmp_path
    clear_registries()


@pytest.fixture
def engine_check(tmp_path: Path) -> Any:
    """``engine_check("myplugin", **kwargs)`` runs `check_plugin` with runs in ``tmp_path``."""
    return lambda name, **kwargs: check_plugin(name, **{"run_dir": tmp_path, **kwargs})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: trains for more than a few seconds (left out by -m 'not slow')")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Fake plugin distributions: ``plugin_site(plugin, code, dist=None, version="1.0", module=None, extra=None)``.

    Each is a module holding ``code`` and a ``.dist-info`` with its ``engine.plugins`` entry point, in a
    directory put on ``sys.path`` and ``PYTHONPATH`` (so ``engine`` subprocesses see it too); ``extra``
    modules (``{name: code}``: the plugin's targets) go beside it. Returns the directory.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    modules: list[str] = []

    def make(
        plugin: str,
        code: str,
        dist: str | None = None,
        version: str = "1.0",
        module: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Path:
        dist = dist or f"engine-{plugin}"
        module = module or f"{dist.replace('-', '_')}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        for name, text in (extra or {}).items():
            (site / f"{name}.py").write_text(textwrap.dedent(text))
            modules.append(name)
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[engine.plugins]\n{plugin} = {module}\n")
        modules.append(module)
        importlib.invalidate_caches()
        return site

    yield make
    for name in modules:
        sys.modules.pop(name, None)


class _Planted:
    """Unpickling this creates the marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def plant_pickle(path: str | Path, marker: str | Path) -> Path:
    """Write at ``path`` a checkpoint whose unpickling would create ``marker``; a safe loader never does."""
    import torch

    torch.save({"state_dict": _Planted(Path(marker)), "global_step": 1}, path)
    return Path(path)


def one_error(out: Any, *names: str) -> str:
    """The one ``error:`` line of a command refused as a user mistake (exit 2, no traceback), naming ``names``."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert all(name in errors[0] for name in names), errors[0]
    return errors[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes: equal before and after when a failure destroyed nothing."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def full_disk(monkeypatch: pytest.MonkeyPatch, under: str | Path, when: Callable[[bytes], bool] = bool) -> None:
    """Files opened for writing below ``under`` are truncated, then their writes of data ``when`` accepts fail
    as on a full disk (``ENOSPC``, no file named): ``full_disk(monkeypatch, run, lambda data: b"x" in data)``."""
    import builtins
    import errno
    import io

    real, root = builtins.open, os.path.realpath(under) + os.sep

    class Full:
        def __init__(self, fh: Any) -> None:
            self._fh = fh

        def write(self, data: Any) -> int:
            if when(bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else str(data).encode()):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._fh.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fh, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

    def opened(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real(file, mode, *args, **kwargs)
        below = isinstance(file, (str, os.PathLike)) and os.path.realpath(file).startswith(root)
        return Full(fh) if below and set(mode) & set("wax+") else fh

    monkeypatch.setattr(builtins, "open", opened)
    monkeypatch.setattr(io, "open", opened)
