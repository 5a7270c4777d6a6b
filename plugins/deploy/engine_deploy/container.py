"""The ``container`` deployment target: a Docker/Podman build context that serves the run with ``engine serve``.

``engine deploy RUN --target container --out DIR`` writes::

    DIR/Dockerfile         python:X.Y-slim (the run's Python), non-root user, HEALTHCHECK on GET /health,
                           ENTRYPOINT engine serve run --artifact . --host 0.0.0.0 --port 8000
    DIR/requirements.txt   pinned: engine wheels, the run's libraries, CPU torch, serving, their dependencies
    DIR/wheels/            a wheel per engine distribution the run used (pip wheel of its local source)
    DIR/run/               the run's records and best checkpoint (data: config, facts, environment, summary ...)
    DIR/model.pt           the model the image serves (TorchScript; or model.pt2, model.onnx), verified
    DIR/manifest.json      written by ``engine deploy`` after verification (target deploy.container)
    DIR/sample.json        one real input, for a first request
    DIR/.dockerignore, DIR/README.md

The image's working directory mirrors ``DIR``, so its entry command, run in ``DIR`` on this machine,
serves the same files. Everything recorded is relative to ``DIR``: host paths in the copied records
(``config.yaml``'s ``run.dir``, ``environment.json``'s command) are elided.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Literal

from engine import ConfigError, EngineError
from engine_deploy import context_files, pins

#: The deployment target whose artifact the image serves, per ``format``.
INNER = {"torchscript": "deploy.torchscript", "export": "deploy.export", "onnx": "deploy.onnx"}
RUN_DIR = "run"
WHEELS = "wheels"
SAMPLE = "sample.json"


class Container:
    """A container build context serving the run (Dockerfile, pinned requirements, engine wheels, the run's files).

    The image runs ``engine serve`` on the exported model (``--artifact``), which ``engine deploy``
    verifies against eager PyTorch like any target. Build it with ``docker build -t NAME DIR``
    (see the README.md it writes). Without a run (a bare model) it writes the model artifact only.

    A generating run (a language model, a translator) is packaged the same way: the image serves the exported
    network, and ``engine serve`` runs the task's decoding loop over it in Python (the engine wheels carry it).

    Args:
        format: the model the image serves: torchscript (needs torch only), export (torch.export) or onnx
            (ONNX Runtime, installed in the image).
        base: base image; empty for ``python:X.Y-slim`` with the run's Python version.
        port: port ``engine serve`` listens on in the container (EXPOSE, HEALTHCHECK, ENTRYPOINT).
    """

    def __init__(
        self, format: Literal["torchscript", "export", "onnx"] = "torchscript", base: str = "", port: int = 8000
    ) -> None:
        if format not in INNER:
            raise ConfigError(f"container format must be one of {', '.join(INNER)}, got {format!r}")
        if not 1 <= port <= 65535:
            raise ConfigError(f"container port must be between 1 and 65535, got {port}")
        if any(c.isspace() for c in base):
            raise ConfigError(f"container base must be an image reference, got {base!r}", hint="base=python:3.11-slim")
        import engine

        self.format, self.base, self.port = format, base, port
        self._inner = engine.create("deploy", INNER[format])
        self._run: Any = None
        self.report: dict[str, Any] = {}

    #: The artifact is the network alone (`engine_deploy.protocols.CarriesNetwork`): a generating run's decoding
    #: loop is verified over it like torchscript's or onnx's, and `engine serve` runs that loop in the image.
    carries_network = True

    @property
    def tolerance(self) -> float:
        return float(self._inner.tolerance)

    def use_run(self, run: Any) -> None:
        """The run to package (``engine deploy`` calls this before `export`)."""
        self._run = run

    def export(self, model: Any, example_inputs: Any, out_dir: Path) -> Path:
        out = Path(out_dir)
        artifact = Path(self._inner.export(model, example_inputs, out))
        if self._run is None:
            self.report = {"context": None, "note": "no run given: the model artifact only, no build context"}
            return artifact
        self.report = write_context(self._run, out, artifact, example_inputs, self)
        return artifact

    def load(self, path: Path) -> Any:
        return self._inner.load(Path(path))


def entrypoint(port: int) -> list[str]:
    """The image's entry command: ``engine serve`` on the context's run and verified model."""
    return ["engine", "serve", RUN_DIR, "--artifact", ".", "--host", "0.0.0.0", "--port", str(port)]


def write_context(run: Any, out: Path, artifact: Path, example: Any, target: Container) -> dict[str, Any]:
    """Write the build context around ``artifact`` (already in ``out``); return the target's report."""
    if out.resolve() == run.path.resolve():
        raise EngineError(
            "the container target cannot write its build context into the run directory itself",
            hint="choose another --out (default: RUN/deploy/container)",
        )
    _clear(out)
    # claimed first: a context left half-written (pip wheel failed) is still recognised as ours next time
    (out / "Dockerfile").write_text(f"{context_files.MARK}: incomplete, deploy again\n", encoding="utf-8")
    environment = _environment(run)
    python = str(environment.get("python") or "")
    chosen, base_note = base_image(python)
    if target.base:
        base_note = ""  # the user's choice
    else:
        target.base = chosen
    copied = copy_run(run, out / RUN_DIR)

    used = pins.used_distributions(environment, run.config)  # only the plugins the run's components come from
    sources = {name: src for name in used if (src := pins.source_dir(name)) is not None}
    by_version = {name: version or pins.installed(name) or "" for name, version in used.items() if name not in sources}
    wheels = pins.build_wheels(sources, out / WHEELS)
    lock = pins.lock(environment, wheels, by_version, ["onnxruntime"] if target.format == "onnx" else [])
    notes = ([base_note] if base_note else []) + lock.notes
    (out / "requirements.txt").write_text(lock.text(python or None), encoding="utf-8")

    first = example[0] if isinstance(example, (tuple, list)) else example  # a generating run: the network's arguments
    sample = first[:1].detach().cpu()  # a generating run's deploy replaces sample.json with a real text input
    (out / SAMPLE).write_text(json.dumps({"inputs": sample[0].tolist()}) + "\n", encoding="utf-8")
    command = entrypoint(target.port)
    info = context_files.Info(
        run_name=run.path.name,
        image=image_name(run.path.name),
        model=str((run.config.get("model") or {}).get("name") or "?"),
        data=str((run.config.get("data") or {}).get("name") or "?"),
        format=target.format,
        inner=INNER[target.format],
        artifact=artifact.name,
        base=target.base,
        python=python,
        port=target.port,
        entrypoint=command,
        input_shape=list(sample.shape[1:]),
        wheels=[(w.distribution, w.version, w.file, w.source) for w in wheels],
        by_version=dict(by_version),
        pins=lock.count,
        copied=copied,
        notes=notes,
        created=time.strftime("%Y-%m-%d"),
    )
    (out / "Dockerfile").write_text(context_files.dockerfile(info), encoding="utf-8")
    (out / ".dockerignore").write_text(context_files.DOCKERIGNORE, encoding="utf-8")
    (out / "README.md").write_text(context_files.readme(info), encoding="utf-8")
    return {
        "context": ["Dockerfile", ".dockerignore", "README.md", "requirements.txt", SAMPLE, RUN_DIR, WHEELS],
        "base_image": target.base,
        "python": python,
        "serves": INNER[target.format],
        "entrypoint": command,
        "run_files": copied,
        "wheels": [
            {
                "distribution": w.distribution,
                "version": w.version,
                "file": w.file,
                "sha256": w.sha256,
                "source": w.source,
            }
            for w in wheels
        ],
        "pinned_by_version": dict(by_version),
        "requirements": lock.count,
        "notes": notes,
        "image": info.image,
    }


def _environment(run: Any) -> dict[str, Any]:
    file = run.path / "environment.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # missing, not JSON, nested too deep: a record, not code
        data = None
    if isinstance(data, dict) and data.get("plugins"):
        return data
    return pins.current_environment()  # an old run without it: what is installed here


def base_image(python: str) -> tuple[str, str]:
    """``python:X.Y-slim`` for the run's Python ``X.Y.Z`` (this interpreter's when unknown), and a note if changed."""
    match = re.match(r"^(\d+)\.(\d+)", python or "")
    version = (int(match[1]), int(match[2])) if match else sys.version_info[:2]
    if version < (3, 10):
        return "python:3.11-slim", f"the run's Python {python} is older than the engine supports: python:3.11-slim"
    note = "" if match else f"the run records no Python version: python:{version[0]}.{version[1]}-slim (this one's)"
    return f"python:{version[0]}.{version[1]}-slim", note


def image_name(run_name: str) -> str:
    """A valid image name from the run's name (lowercase letters, digits, ``.``, ``_`` and ``-``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", run_name.lower()).strip("._-")
    return name or "engine-model"


def _clear(out: Path) -> None:
    """Remove ``run/`` and ``wheels/`` of an earlier context in ``out``; refuse files this target did not write."""
    docker = out / "Dockerfile"
    ours = docker.is_file() and docker.read_text(errors="replace").startswith(context_files.MARK)
    for name in ("Dockerfile", RUN_DIR, WHEELS):
        path = out / name
        if not path.exists() and not path.is_symlink():
            continue
        if not ours:
            raise EngineError(
                f"{out} already has a {name} that the container target did not write",
                hint="choose an empty --out directory",
            )
        if name == "Dockerfile":
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def copy_run(run: Any, dest: Path) -> list[str]:
    """Copy what serving the run needs into ``dest``: its top-level files (records, weights, data artifacts
    such as tokenizer.json) and its best checkpoint. Symbolic links and hidden files are left out."""
    src = run.path
    dest.mkdir(parents=True)
    copied: list[str] = []
    for file in sorted(src.iterdir()):
        if file.is_symlink() or not file.is_file() or file.name.startswith(".") or ".tmp" in file.name:
            continue
        shutil.copyfile(file, dest / file.name)
        copied.append(file.name)
    checkpoint = run.checkpoint("best")
    relative = checkpoint.relative_to(src)
    (dest / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, dest / relative)
    copied.append(relative.as_posix())
    _scrub(dest)
    return copied


def _scrub(dest: Path) -> None:
    """Elide this machine's paths from the copied records (``run.dir``, the command that trained the run)."""
    import yaml

    config = dest / "config.yaml"
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    section = cfg.get("run") if isinstance(cfg, dict) else None
    if isinstance(section, dict) and isinstance(section.get("dir"), str) and Path(section["dir"]).is_absolute():
        section["dir"] = "runs"  # the default: where a run trained from this config would go
        config.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    file = dest / "environment.json"
    if file.is_file():
        try:
            env = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            return
        if isinstance(env, dict) and isinstance(env.get("command"), list):
            env["command"] = [_elide(str(a)) for a in env["command"]]
            file.write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")


def _elide(arg: str) -> str:
    """``run.dir=/home/me/runs`` -> ``run.dir=…/runs``; ``/home/me/x.yaml`` -> ``…/x.yaml``."""
    key, sep, value = arg.partition("=") if "=" in arg else ("", "", arg)
    return f"{key}{sep}…/{Path(value).name}" if Path(value).is_absolute() else arg
