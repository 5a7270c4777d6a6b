"""Pinned requirements and engine wheels for a container build context (no torch, no network).

- `used_distributions`: the engine distributions a run used (its ``environment.json``
  plugins whose status was ok, the engine first);
- `source_dir`: the local source directory a distribution was installed from (editable or
  local installs, read from ``direct_url.json``), if any;
- `build_wheels`: one ``pip wheel --no-deps --no-build-isolation`` for all of them;
- `lock`: every requirement of those wheels and of serving, down to the leaves, pinned at the
  versions the run recorded (``environment.json`` "libraries") or, for the rest, installed here;
  torch (and torchvision/torchaudio) pinned to their CPU builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from engine import EngineError

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Distributions whose default Linux wheels bundle CUDA: pinned to the CPU index's ``+cpu`` builds.
CPU_BUILDS = ("torch", "torchvision", "torchaudio")
#: What ``engine serve`` needs beyond the engine distributions (pinned when installed here).
SERVING = ("fastapi", "uvicorn[standard]", "prometheus-client", "numpy", "safetensors", "pyyaml")
#: Never pinned: the CUDA runtimes a GPU build of torch names, and the installer itself.
_SKIP_PREFIXES = ("nvidia-",)
_SKIP = {"triton", "pip"}


@dataclass
class Wheel:
    """A wheel built from a distribution's local source into the context's ``wheels/``."""

    distribution: str
    version: str
    file: str  # relative to the context: wheels/NAME.whl
    sha256: str
    source: str  # "editable" or "local"
    requires: list[str] = field(default_factory=list, repr=False)


@dataclass
class Lock:
    """The pinned requirements: wheel files, then ``name==version`` lines, in sections."""

    wheels: list[Wheel]
    recorded: dict[str, str]  # the run's libraries (environment.json), CPU torch
    serving: dict[str, str]
    dependencies: dict[str, str]
    by_version: dict[str, str]  # engine distributions without a local source
    notes: list[str]

    def text(self, python: str | None) -> str:
        lines = [
            "# Pinned requirements of the image (the Dockerfile runs `pip install -r requirements.txt`).",
            "# Written by `engine deploy RUN --target container` from the run's environment.json"
            + (f" (Python {python})" if python else ""),
            "# and the versions installed where it was deployed.",
            f"--extra-index-url {CPU_INDEX}",
            "--find-links wheels",
            "",
            "# engine and the plugins the run used: not on PyPI, installed from their wheel files (never by name)",
            *[f"./{w.file}" for w in self.wheels],
        ]
        if self.by_version:
            lines += [
                "# engine distributions with no local source here: pinned by version, so pip looks them up",
                "# (put their wheels into wheels/ first: see README.md)",
                *[f"{n}=={v}" if v else n for n, v in self.by_version.items()],
            ]
        lines += ["", "# recorded by the run (environment.json); torch from the CPU index above (no CUDA)"]
        lines += [f"{n}=={v}" for n, v in self.recorded.items()]
        lines += ["", "# serving (engine serve)", *[f"{n}=={v}" for n, v in self.serving.items()]]
        lines += ["", "# what they depend on, at the versions installed here"]
        lines += [f"{n}=={v}" for n, v in self.dependencies.items()]
        return "\n".join(lines) + "\n"

    @property
    def count(self) -> int:
        return len(self.wheels) + sum(len(d) for d in (self.by_version, self.recorded, self.serving, self.dependencies))


def used_distributions(environment: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, str]:
    """``{distribution: recorded version}`` of the engine distributions a run needs, engine first.

    The plugins (status ok in ``environment.json``) that provide one of the run's components
    (task, data, every slot: the plugin part of their qualified names in ``config``) and the
    deploy plugin, which serves; without ``config``, every plugin that was ok.
    """
    wanted = None
    if config is not None:
        names = [v["name"] for v in config.values() if isinstance(v, dict) and isinstance(v.get("name"), str)]
        wanted = {n.split(".", 1)[0] for n in names if "." in n} | {"core", "deploy"}
    used: dict[str, str] = {}
    for entry in environment.get("plugins") or []:
        if not (isinstance(entry, dict) and entry.get("status") == "ok" and entry.get("distribution")):
            continue
        if wanted is None or entry.get("plugin") in wanted:
            used.setdefault(str(entry["distribution"]), str(entry.get("version") or ""))
    if "engine" not in used:
        used = {"engine": installed("engine") or "", **used}
    return dict(sorted(used.items(), key=lambda kv: (kv[0] != "engine", kv[0])))


def current_environment() -> dict[str, Any]:
    """What ``environment.json`` would record now (for a run that has none)."""
    import engine

    plugins = [
        {"distribution": p.distribution, "version": p.version, "status": p.status}
        for p in engine.get_registry().plugins()
    ]
    return {"plugins": plugins, "libraries": {}, "python": ".".join(map(str, sys.version_info[:3]))}


def source_dir(distribution: str) -> tuple[Path, str] | None:
    """``(directory, "editable" | "local")`` the installed ``distribution`` was built from, if it was a local one."""
    for dist in metadata.distributions(name=distribution):
        text = dist.read_text("direct_url.json")
        if text:  # what pip recorded when installing it
            try:
                info = json.loads(text)
            except ValueError:
                continue
            url = str(info.get("url", ""))
            path = Path(unquote(urlparse(url).path))
            if "dir_info" in info and url.startswith("file:") and _is_project(path):
                return path, "editable" if info["dir_info"].get("editable") else "local"
            continue
        # an .egg-info beside its source (a source tree on sys.path, `setup.py develop`)
        base = Path(str(dist.locate_file(""))).resolve()
        if _is_project(base, distribution):
            return base, "editable"
    return None


def _is_project(path: Path, distribution: str | None = None) -> bool:
    """Whether ``path`` is a project directory (of ``distribution``: its pyproject.toml names it)."""
    file = path / "pyproject.toml"
    if distribution is None:
        return file.is_file() or (path / "setup.py").is_file()
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        return file.is_file()
    try:
        name = tomllib.loads(file.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, ValueError):
        return False
    return isinstance(name, str) and canonicalize_name(name) == canonicalize_name(distribution)


def build_wheels(sources: dict[str, tuple[Path, str]], out: Path, timeout: float = 600) -> list[Wheel]:
    """Build one wheel per source directory into ``out`` (one pip call) and read their metadata."""
    out.mkdir(parents=True, exist_ok=True)
    if not sources:
        return []
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out)]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(
            [*cmd, *(str(p) for p, _ in sources.values())], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"pip wheel did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise EngineError(
            f"pip wheel failed for {', '.join(sources)}: {tail[:400]}",
            hint="the container target builds the engine distributions' wheels with "
            "`pip wheel --no-deps --no-build-isolation`: the build backend (setuptools) must be installed",
        )
    found = {canonicalize_name(parse_wheel_filename(f.name)[0]): f for f in out.glob("*.whl")}
    wheels = []
    for name, (_, kind) in sources.items():
        file = found.get(canonicalize_name(name))
        if file is None:
            raise EngineError(f"pip wheel did not write a wheel for {name} into {out.name}/")
        version = str(parse_wheel_filename(file.name)[1])
        requires = _wheel_requires(file)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        wheels.append(Wheel(name, version, f"{out.name}/{file.name}", digest, kind, requires))
    return wheels


def _wheel_requires(file: Path) -> list[str]:
    with zipfile.ZipFile(file) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        headers = HeaderParser().parsestr(zf.read(meta).decode("utf-8"))
    return list(headers.get_all("Requires-Dist") or [])


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _installed_requires(name: str) -> list[str] | None:
    try:
        return list(metadata.requires(name) or [])
    except metadata.PackageNotFoundError:
        return None


def marker_environment(python: str | None) -> dict[str, str]:
    """Marker values of the image: Linux, CPython ``python`` (the run's), this machine's architecture."""
    env = dict(default_environment())
    if python and python.count(".") >= 1:
        env["python_version"] = ".".join(python.split(".")[:2])
        env["python_full_version"] = python
    env.update(sys_platform="linux", platform_system="Linux", os_name="posix", platform_python_implementation="CPython")
    return env


def closure(
    roots: Iterable[str], requires_of: Callable[[str], list[str] | None], env: dict[str, str]
) -> dict[str, set[str]]:
    """Every distribution ``roots`` need, with the extras asked of it (markers evaluated in ``env``)."""
    done: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = []
    for line in roots:
        req = Requirement(line)
        todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    while todo:
        name, extras = todo.pop()
        if name in done and extras <= done[name]:
            continue
        done.setdefault(name, set()).update(extras)
        wanted = {"", *done[name]}
        for line in requires_of(name) or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return done


def _cpu(version: str) -> str:
    try:
        return f"{Version(version).public}+cpu"
    except InvalidVersion:
        return version


def lock(
    environment: dict[str, Any], wheels: list[Wheel], by_version: dict[str, str], extra: Iterable[str] = ()
) -> Lock:
    """Pin everything the image needs: ``wheels``, the run's libraries, serving (and ``extra``), their dependencies."""
    env = marker_environment(environment.get("python"))
    own = {canonicalize_name(w.distribution): w for w in wheels}
    engine_names = set(own) | {canonicalize_name(n) for n in by_version}
    notes: list[str] = []

    def requires_of(name: str) -> list[str] | None:
        return own[name].requires if name in own else _installed_requires(name)

    recorded_libs = {canonicalize_name(k): str(v) for k, v in (environment.get("libraries") or {}).items() if v}
    serving = [s for s in SERVING if installed(Requirement(s).name)]
    roots = [w.distribution for w in wheels] + list(by_version) + list(recorded_libs) + serving + list(extra)
    needed = closure(roots, requires_of, env)

    def line(name: str) -> tuple[str, str] | None:
        version = recorded_libs.get(name) or installed(name)
        if version is None:
            notes.append(f"{name} is not installed here: left for pip to resolve")
            return None
        here = installed(name)
        if name in recorded_libs and here and here != version:
            notes.append(f"{name}: the run recorded {version}, this machine has {here}; pinned {version}")
        if name in CPU_BUILDS:
            version = _cpu(version)
        extras = sorted(needed.get(name, set()))
        return f"{name}[{','.join(extras)}]" if extras else name, version

    sections: list[dict[str, str]] = [{}, {}, {}]
    serving_names = {canonicalize_name(Requirement(s).name) for s in [*serving, *extra]}
    for name in sorted(needed):
        if name in engine_names or name in _SKIP or name.startswith(_SKIP_PREFIXES):
            continue
        pinned = line(name)
        if pinned is None:
            continue
        where = 0 if name in recorded_libs or name in CPU_BUILDS else 1 if name in serving_names else 2
        sections[where][pinned[0]] = pinned[1]
    plugins = {canonicalize_name(k): v for k, v in _recorded_plugins(environment).items()}
    for name, w in own.items():
        recorded = plugins.get(name)
        if recorded and recorded != w.version:
            notes.append(f"{w.distribution}: the run recorded {recorded}, the wheel built here is {w.version}")
    for name, version in by_version.items():
        pinned = f"pinned by version ({name}=={version})" if version else "listed by name, version unknown"
        notes.append(f"{name} has no local source here: {pinned}")
    return Lock(wheels, sections[0], sections[1], sections[2], dict(by_version), notes)


def _recorded_plugins(environment: dict[str, Any]) -> dict[str, str]:
    return {
        str(p["distribution"]): str(p.get("version") or "")
        for p in environment.get("plugins") or []
        if isinstance(p, dict) and p.get("distribution")
    }
