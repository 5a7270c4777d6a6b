"""The engine's version and the version of its plugin API (importable without anything else)."""

from __future__ import annotations

__version__ = "0.1.0"
#: Version of the plugin API (the hookspecs); plugins may state the range they support (``ENGINE_API``).
API_VERSION = 1
