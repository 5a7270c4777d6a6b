"""The text files of the container target's build context: Dockerfile, .dockerignore, README.md.

Plain functions of an `Info` (no torch, no file access): everything they write is relative to
the context directory; the only absolute paths are the image's own (``/app``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

#: First words of every Dockerfile this target writes (how it recognises its own context).
MARK = "# Written by `engine deploy RUN --target container`"

DOCKERIGNORE = """\
# Only what the Dockerfile copies is needed to build the image.
README.md
sample.json
.dockerignore
**/__pycache__
**/*.pyc
**/.DS_Store
"""


@dataclass
class Info:
    """What the context's files say about the run and the image."""

    run_name: str
    image: str
    model: str
    data: str
    format: str
    inner: str
    artifact: str
    base: str
    python: str
    port: int
    entrypoint: list[str]
    input_shape: list[int]
    wheels: list[tuple[str, str, str, str]]  # distribution, version, file, source kind
    by_version: dict[str, str] = field(default_factory=dict)
    pins: int = 0
    copied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: str = ""


def _health_probe(port: int) -> str:
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=4)"
    return json.dumps(["python", "-c", code])


def dockerfile(info: Info) -> str:
    return f"""\
{MARK} (see README.md).
# Serves run {info.run_name} ({info.model} on {info.data}) with `engine serve`: the {info.format} model
# ({info.artifact}) that `engine deploy` verified against eager PyTorch (manifest.json).
#   docker build -t {info.image} .
#   docker run --rm -p {info.port}:{info.port} -e ENGINE_API_KEY=... {info.image} [engine serve flags]
FROM {info.base}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged user runs the server (numeric ids, so runAsNonRoot policies can check them).
RUN groupadd --system --gid 10001 engine \\
 && useradd --system --uid 10001 --gid engine --create-home engine

WORKDIR /app

# Pinned requirements: the engine and its plugins from wheels/ (they are not on PyPI), torch from its CPU index.
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt

# Data, not code: the run's records and best checkpoint, and the verified model (owned by root: read-only).
COPY run/ ./run/
COPY manifest.json {info.artifact} ./

USER 10001:10001
EXPOSE {info.port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
  CMD {_health_probe(info.port)}

# Arguments after the image name in `docker run` are appended: engine serve flags (--max-batch-size 64 ...).
ENTRYPOINT {json.dumps(info.entrypoint)}
"""


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| file | what |", "|---|---|", *(f"| `{a}` | {b} |" for a, b in rows)])


def readme(info: Info) -> str:
    image, port = info.image, info.port
    shape = "[" + ", ".join(str(s) for s in info.input_shape) + "]"
    wheels = "\n".join(
        f"- `{file}`: {dist} {version} (built from the source of its {kind} install)"
        for dist, version, file, kind in info.wheels
    )
    missing = ""
    if info.by_version:
        listed = ", ".join(f"{n}=={v}" if v else n for n, v in info.by_version.items())
        missing = (
            f"\n\n**Not built here:** {listed} had no local source directory where this context was written, so "
            "`requirements.txt` pins them by version and pip will look them up by name. They are not on PyPI: "
            "build their wheels (`pip wheel --no-deps SOURCE -w wheels/`) before `docker build`, or point pip at "
            "your own index, or a same-named package from PyPI may be installed instead."
        )
    notes = "".join(f"\n- {n}" for n in info.notes) or "\n- none"
    files: list[tuple[str, str]] = [
        ("Dockerfile", f"`{info.base}`, user `engine` (uid 10001), `HEALTHCHECK` on `GET /health`, entry point below"),
        ("requirements.txt", f"{info.pins} pinned requirements (wheel files, the run's libraries, CPU torch, serving)"),
        ("wheels/", "a wheel per engine distribution the run used"),
        ("run/", "the run directory's files: " + ", ".join(f"`{c}`" for c in info.copied)),
        (info.artifact, f"the served model ({info.inner}), reloaded and verified by `engine deploy`"),
        ("manifest.json", "the verification (`passed`, max abs diff, test metric) and what the model takes"),
        ("sample.json", f"one real input of shape {shape}, for a first request (not copied into the image)"),
    ]
    return f"""\
# Container image for run `{info.run_name}`

A build context for an image serving run `{info.run_name}` (`{info.model}` on `{info.data}`) with
`engine serve`: dynamic batching, `POST /predict`, `GET /health`, `GET /metadata`, OpenAPI at `/docs`.
It was written by `engine deploy RUN --target container` ({info.created}); the model it serves, `{info.artifact}`
({info.format}), was verified against eager PyTorch on the run's test inputs (see `manifest.json`).

## Build and run

```console
docker build -t {image} DIR                 # DIR: this directory (`.` from inside it)
docker run --rm -p {port}:{port} {image}
curl -s localhost:{port}/health
curl -s localhost:{port}/predict -H 'content-type: application/json' -d @sample.json
```

The container runs

```console
{" ".join(info.entrypoint)}
```

in `/app`, which holds this directory's `run/`, `manifest.json` and `{info.artifact}`. (Run in this directory
on a machine with the engine installed, the same command serves the same files.)

## Flags and the API key

Arguments after the image name are appended to `engine serve`, so any of its flags can be given:

```console
docker run --rm -p {port}:{port} -e ENGINE_API_KEY=change-me {image} --max-batch-size 64 --max-wait-ms 2 --threads 2
```

- **API key**: `-e ENGINE_API_KEY=...` (or `--env-file FILE`) makes `/predict` and `/metadata` require it
  in `X-API-Key` or `Authorization: Bearer`; `/health` stays open for probes. Without a key the server
  warns that it listens on 0.0.0.0 unprotected. Prefer the environment to `--api-key`, which shows in
  process listings; never bake a key into the image.
- **Port**: the server listens on {port} inside the container; publish another host port with
  `-p 9000:{port}`. (Appending `--port N` works too, but the `HEALTHCHECK` probes {port}.)
- **Threads**: torch sees the host's cores, not a `--cpus` limit: pass `--threads N` to match it.
- **Health**: `docker inspect --format '{{{{.State.Health.Status}}}}' CONTAINER`; in Kubernetes, an
  `httpGet` probe on `/health`, port {port}.

## Podman

```console
podman build --format docker -t {image} DIR    # --format docker keeps the HEALTHCHECK (OCI images have none)
podman run --rm -p {port}:{port} -e ENGINE_API_KEY=change-me {image}
podman healthcheck run CONTAINER                 # the same probe, on demand
```

Rootless podman needs nothing else: the image runs as an unprivileged user on an unprivileged port.

## What is inside

{_table(files)}

The image's Python is `{info.base}`, matching the run's Python {info.python or "(not recorded)"}. Only the CPU
build of torch is installed (`--extra-index-url https://download.pytorch.org/whl/cpu`, `torch==X+cpu`), so
no CUDA libraries are pulled. The engine distributions are installed from their wheel files, never looked up
by name on an index:

{wheels}{missing}

Wheels of editable installs are built from the source tree as it was when this context was written.
Host paths in the copied records (`config.yaml`'s `run.dir`, `environment.json`'s command) are elided:
nothing here names a path of the machine that wrote it.

Notes:{notes}
"""
