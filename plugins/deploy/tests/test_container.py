"""engine deploy --target container: a build context whose entry command, run outside a container, serves the run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from engine import EngineError

KEY = "container-secret"
BINARY = (".whl", ".ckpt", ".pt", ".pt2", ".onnx", ".safetensors")


@pytest.fixture(scope="module")
def context(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("container")
    return out, deploy(mlp_run, "container", out=out, timing=False, samples=256)


def _used(mlp_run: Path) -> set[str]:
    """The core MLP run needs the engine (its components) and the deploy plugin (it serves), nothing else."""
    return {"engine", "engine-deploy"}


def _entrypoint(dockerfile: str) -> list[str]:
    lines = [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT ")]
    assert len(lines) == 1, dockerfile
    return json.loads(lines[0].removeprefix("ENTRYPOINT "))


@pytest.mark.slow
def test_context_holds_the_image_files_and_no_host_path(context: Any, mlp_run: Path) -> None:
    out, manifest = context
    for name in (
        "Dockerfile",
        ".dockerignore",
        "README.md",
        "requirements.txt",
        "manifest.json",
        "model.pt",
        "sample.json",
        "run/config.yaml",
        "run/facts.json",
        "run/environment.json",
        "run/summary.json",
        "run/model.safetensors",
        "run/checkpoints/best.ckpt",
    ):
        assert (out / name).is_file(), name
    assert manifest["target"] == "deploy.container" and manifest["artifact"] == "model.pt"
    assert manifest["verification"]["passed"] and manifest["options"]["format"] == "torchscript"

    python = json.loads((mlp_run / "environment.json").read_text())["python"]
    docker = (out / "Dockerfile").read_text()
    assert f"FROM python:{'.'.join(python.split('.')[:2])}-slim\n" in docker
    assert "useradd --system --uid 10001" in docker and "\nUSER 10001:10001\n" in docker
    assert "HEALTHCHECK" in docker and "/health" in docker
    assert "RUN pip install --no-cache-dir -r requirements.txt" in docker
    copies = [line.split()[1:-1] for line in docker.splitlines() if line.startswith("COPY ")]
    assert all(not src.startswith("/") for srcs in copies for src in srcs) and ["run/"] in copies
    assert _entrypoint(docker) == [
        *["engine", "serve", "run", "--artifact", "."],
        *["--host", "0.0.0.0", "--port", "8000"],
    ]

    reqs = (out / "requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    torch = [r for r in reqs if r.startswith("torch==")]
    assert len(torch) == 1 and torch[0].endswith("+cpu")
    from importlib.metadata import version

    assert f"fastapi=={version('fastapi')}" in reqs and f"uvicorn[standard]=={version('uvicorn')}" in reqs
    pins = [r for r in reqs if r and not r.startswith(("#", "--", "./wheels/"))]
    assert pins and all("==" in r for r in pins)
    assert not any(r.startswith(("nvidia-", "triton")) for r in pins)

    readme = (out / "README.md").read_text()
    for text in ("docker build -t", "docker run --rm -p 8000:8000", "-e ENGINE_API_KEY=", "podman build", "podman run"):
        assert text in readme

    # everything recorded is relative to the context: no path of this machine in any text file
    needles = {str(out), str(out.resolve()), str(mlp_run), str(mlp_run.resolve().parent), str(Path.cwd())}
    needles |= {str(Path(__file__).resolve().parents[3]), sys.prefix}
    if len(Path.home().parts) > 1:
        needles.add(str(Path.home()))
    for file in out.rglob("*"):
        if file.is_file() and file.suffix not in BINARY:
            text = file.read_text(encoding="utf-8")
            found = [n for n in needles if n in text]
            assert not found, f"{file.relative_to(out)} names {found}"


@pytest.mark.slow
def test_a_wheel_per_engine_distribution_the_run_used(context: Any, mlp_run: Path) -> None:
    out, manifest = context
    wheels = sorted((out / "wheels").glob("*.whl"))
    built = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheels}
    assert built == _used(mlp_run) and {"engine", "engine-deploy"} <= built
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert all(f"./wheels/{w.name}" in reqs for w in wheels)  # installed from the file, never by name
    report = manifest["verification"]["target_report"]
    assert {w["file"] for w in report["wheels"]} == {f"wheels/{w.name}" for w in wheels}
    assert report["pinned_by_version"] == {}


@pytest.mark.slow
def test_the_entry_command_serves_the_context_outside_a_container(context: Any, context_server: Any) -> None:
    """What `docker run -e ENGINE_API_KEY=... IMAGE --host 127.0.0.1 --port N` runs, in the context directory."""
    out, _ = context
    with context_server(out, KEY) as call:
        assert call("/health")[1]["status"] == "ok"
        sample = (out / "sample.json").read_bytes()  # one real test input
        assert call("/predict", sample, key=None)[0] == 401  # the key from the environment is required
        status, answer = call("/predict", sample)
        assert status == 200, answer
        (prediction,) = answer["predictions"]
        assert prediction["label"].startswith("class_") and 0 < prediction["probability"] <= 1


def test_a_foreign_directory_is_not_overwritten(tmp_path: Path) -> None:
    from engine_deploy.container import _clear

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep")
    with pytest.raises(EngineError, match="did not write"):
        _clear(tmp_path)
    assert (tmp_path / "run" / "mine.txt").read_text() == "keep"
    (tmp_path / "run" / "mine.txt").unlink()
    (tmp_path / "run").rmdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")  # someone's own Dockerfile is not overwritten
    with pytest.raises(EngineError, match="a Dockerfile that the container target did not write"):
        _clear(tmp_path)


def test_base_image_and_elided_paths() -> None:
    from engine_deploy.container import _elide, base_image, image_name

    assert base_image("3.12.4") == ("python:3.12-slim", "")
    assert base_image("3.8.1")[0] == "python:3.11-slim"
    assert _elide("run.dir=/home/me/runs") == "run.dir=…/runs" and _elide("/home/me/x.yaml") == "…/x.yaml"
    assert _elide("model=core.mlp") == "model=core.mlp"
    assert image_name("MLP Synthetic-2026") == "mlp-synthetic-2026" and image_name("__") == "engine-model"


def test_lock_pins_cpu_torch_and_names_distributions_without_source() -> None:
    from engine_deploy import pins

    env = {
        "plugins": [
            {"plugin": "core", "distribution": "engine", "version": "0.1.0", "status": "ok"},
            {"plugin": "foo", "distribution": "engine-foo", "version": "0.3.0", "status": "ok"},
            {"plugin": "bar", "distribution": "engine-bar", "version": "0.2.0", "status": "ok"},
            {"plugin": "broken", "distribution": "engine-broken", "version": "1.0", "status": "broken"},
        ],
        "libraries": {"torch": "2.4.1+cu121", "lightning": "2.4.0"},
        "python": "3.11.7",
    }
    assert pins.used_distributions(env) == {"engine": "0.1.0", "engine-bar": "0.2.0", "engine-foo": "0.3.0"}
    config = {"task": {"name": "core.supervised"}, "model": {"name": "foo.net"}, "seed": 0}
    assert pins.used_distributions(env, config) == {"engine": "0.1.0", "engine-foo": "0.3.0"}
    lock = pins.lock(env, [], {"engine-foo": "0.3.0"})
    lines = lock.text("3.11.7").splitlines()
    assert "torch==2.4.1+cpu" in lines and "lightning==2.4.0" in lines  # the run's versions, CPU torch
    assert "engine-foo==0.3.0" in lines and any("engine-foo has no local source" in n for n in lock.notes)
    assert not any(line.startswith(("engine==", "engine-broken", "nvidia-")) for line in lines)


def test_a_run_record_nested_too_deep_is_ignored_not_a_crash(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from engine_deploy.container import _environment, _scrub

    (tmp_path / "environment.json").write_text("[" * 100_000)
    (tmp_path / "config.yaml").write_text("run: {dir: runs}\n")
    assert _environment(SimpleNamespace(path=tmp_path))["plugins"]  # what is installed here instead
    _scrub(tmp_path)  # leaves the unreadable record as it is
    assert (tmp_path / "environment.json").read_text() == "[" * 100_000
