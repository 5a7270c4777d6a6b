"""A tiny trained core MLP run, shared by every test of the session (a few seconds to train).

``cli``, ``train`` and ``one_thread`` come from `engine.testing`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine."""
    yield


@pytest.fixture(scope="session")
def mlp_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = ["data.num_samples=600", "data.num_features=12", "model.hidden=[32]", "trainer.max_epochs=3"]
    root = tmp_path_factory.mktemp("runs")
    return Path(train(*overrides, root=root, recipe="core/mlp-synthetic", name="mlp").run_dir)


@pytest.fixture(scope="session")
def onnx_dir(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("onnx")
    deploy(mlp_run, "onnx", out=out, timing=False)
    return out


PLUGIN_DIR = Path(__file__).parent / "seq2seq_plugin"


@pytest.fixture(scope="session")
def s2s_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third-party-style seq2seq plugin of ``seq2seq_plugin/`` as an installed distribution (an entry point),
    on the path only while `s2s_plugin` holds it: other modules' tests (and the kernel's, in a parallel run's worker)
    see the plugins they expect."""
    site = tmp_path_factory.mktemp("s2s-site")
    info = site / "engine_s2sdemo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: engine-s2sdemo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[engine.plugins]\ns2sdemo = s2sdemo.plugin\n")
    return site


@contextlib.contextmanager
def s2s_plugin(site: Path) -> Iterator[None]:
    """The s2sdemo plugin installed (on ``sys.path`` and ``PYTHONPATH``, for engine commands too) inside the block."""
    import importlib
    import os

    import engine

    paths = [str(site), str(PLUGIN_DIR)]
    with pytest.MonkeyPatch.context() as mp:
        for p in paths:
            mp.syspath_prepend(p)
        mp.setenv("PYTHONPATH", os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
        importlib.invalidate_caches()
        engine.get_registry(fresh=True)
        yield
    importlib.invalidate_caches()
    engine.get_registry(fresh=True)


@pytest.fixture(scope="session")
def s2s_trained(s2s_site: Path, train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained character-reversal run (per-batch padding, nn.TransformerDecoder): a few seconds, once a session."""
    overrides = ["data=s2sdemo.chars", "data.batch_size=16", "trainer.max_epochs=4", "optimizer.lr=0.01"]
    root = tmp_path_factory.mktemp("s2s-runs")
    with s2s_plugin(s2s_site):
        return Path(train(*overrides, root=root, name="s2s").run_dir)


@pytest.fixture(scope="module")
def s2s_run(s2s_trained: Path, s2s_site: Path) -> Iterator[Path]:
    """`s2s_trained`, with its plugin installed for the module's tests."""
    with s2s_plugin(s2s_site):
        yield s2s_trained


@pytest.fixture
def context_server(tmp_path: Path) -> Any:
    """``context_server(out, key)``: a context manager running a container context's entry command in ``out`` on
    127.0.0.1 (as ``docker run -e ENGINE_API_KEY=key IMAGE --host 127.0.0.1 --port N`` would), waiting for
    ``/health`` (60 s at most); it gives ``call(path, body=None, key=key) -> (status, json)`` and stops the server."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    def call(url: str, body: bytes | None, key: str | None) -> tuple[int, Any]:
        headers = {"content-type": "application/json", **({"X-API-Key": key} if key else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    @contextlib.contextmanager
    def serve(out: Path, key: str) -> Iterator[Any]:
        lines = [line for line in (out / "Dockerfile").read_text().splitlines() if line.startswith("ENTRYPOINT ")]
        assert len(lines) == 1, lines
        command = json.loads(lines[0].removeprefix("ENTRYPOINT "))
        script = Path(sys.executable).with_name("engine")
        exe = [str(script)] if script.is_file() else [sys.executable, "-m", "engine"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        log_path = tmp_path / "serve.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [*exe, *command[1:], "--host", "127.0.0.1", "--port", str(port)],  # appended flags win, as in docker
                cwd=out,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ENGINE_API_KEY": key},
            )
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, log_path.read_text()
                    with contextlib.suppress(OSError):
                        if call(f"{url}/health", None, None)[0] == 200:
                            break
                    assert time.monotonic() < deadline, "no /health within 60 s: " + log_path.read_text()
                    time.sleep(0.25)
                yield lambda path, body=None, key=key: call(url + path, body, key)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    return serve
