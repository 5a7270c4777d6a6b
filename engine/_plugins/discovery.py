"""Finding plugins: the ``engine.plugins`` entry points, cached under a fingerprint of what is installed.

Entry points come in claim order: the distribution installed first keeps a contested plugin name.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zlib
from typing import Any

from engine._contract.version import API_VERSION
from engine._plugins.files import write_json_atomic
from engine._plugins.settings import cache_dir

ENTRY_POINT_GROUP = "engine.plugins"


def fingerprint() -> str:
    """What discovery depends on: the interpreter, the engine API, every distribution on ``sys.path`` (a few ms)."""
    parts = [sys.version, str(API_VERSION)]
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                dists = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:  # a zip file, or gone
            with contextlib.suppress(OSError):
                parts.append(f"{entry} {os.stat(entry).st_mtime_ns}")
            continue
        parts.append(entry)
        for name in dists:
            try:
                st = os.stat(os.path.join(entry, name, "entry_points.txt"))
                parts.append(f" {name} {st.st_mtime_ns} {st.st_size}")
            except OSError:
                parts.append(f" {name}")
    text = "\n".join(parts).encode()
    return f"{len(text)}-{zlib.crc32(text):08x}-{zlib.adler32(text):08x}"


def cache_file() -> Any:
    return cache_dir() / "plugins-v2.json"


def scan() -> list[dict[str, Any]]:
    """The ``engine.plugins`` entry points, read with ``importlib.metadata``."""
    from importlib.metadata import entry_points

    found: list[dict[str, Any]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist, version = (ep.dist.name, ep.dist.version) if ep.dist else (None, None)
        entry = {"name": ep.name, "value": ep.value, "dist": dist, "version": version}
        found.append({**entry, "installed": _installed_at(ep.dist)})
    return sorted(found, key=lambda e: (e["installed"], e["dist"] or "", e["name"]))  # claim order


def _installed_at(dist: Any) -> int:
    """When ``dist`` was installed: its metadata directory's modification time (0 if unknown)."""
    try:
        return os.stat(dist._path).st_mtime_ns  # PathDistribution keeps its .dist-info directory here
    except (AttributeError, OSError):
        return 0


class DiscoveryCache:
    """The entry points and ``ENGINE_API`` verdicts of the installed distributions (``engine`` and ``python -m
    engine`` see different paths: the file keeps the last few fingerprints)."""

    KEEP = 8

    def __init__(self) -> None:
        self.key = fingerprint()
        try:
            data = json.loads(cache_file().read_text(encoding="utf-8"))
            self.known: dict[str, Any] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.known = {}
        entry = self.known.get(self.key)
        self.dirty = not (isinstance(entry, dict) and {"entry_points", "verdicts"} <= entry.keys())
        if self.dirty:
            entry = {"entry_points": scan(), "verdicts": {}}
        self.entry_points: list[dict[str, Any]] = entry["entry_points"]
        self.verdicts: dict[str, str | None] = entry["verdicts"]

    def save(self, verdicts: dict[str, str | None]) -> None:
        if not self.dirty and verdicts == self.verdicts:
            return
        self.known.pop(self.key, None)
        kept = dict(list(self.known.items())[-(self.KEEP - 1) :])
        kept[self.key] = {"entry_points": self.entry_points, "verdicts": verdicts}  # newest last
        with contextlib.suppress(OSError):  # a read-only cache directory only costs speed
            write_json_atomic(cache_file(), kept)
