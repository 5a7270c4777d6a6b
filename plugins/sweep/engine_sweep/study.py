"""The sweep's Optuna storage and pruners (light: importing this does not import torch or Lightning)."""

from __future__ import annotations

from typing import Any

_STORAGES: dict[str, Any] = {}


def rdb_storage(url: str) -> Any:
    """Optuna's RDB storage for ``url``, waiting for SQLite's lock rather than failing (several processes).

    One per URL and process: opening one checks the schema (tenths of a second), and every trial
    of a worker reports to the same study.
    """
    import optuna

    if url not in _STORAGES:
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            kwargs = {"creator": lambda: _sqlite(path)}
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    return _STORAGES[url]


def _sqlite(path: str) -> Any:
    """A connection to the study's SQLite file in write-ahead-log mode.

    WAL with ``synchronous=NORMAL`` commits without an fsync each (an ask or a tell is several
    commits): a killed process loses nothing, a power cut at most the last commits, never the
    file. Readers and the one writer of several processes do not block each other; a writer
    waits for another up to two minutes.
    """
    import sqlite3

    connection = sqlite3.connect(path, timeout=120, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError:
        pass  # a file system without shared memory (some network mounts): SQLite's default journal
    return connection


def make_pruner(name: str, startup: int, warmup: int) -> Any:
    """Optuna's median or successive-halving pruner (``none``: never prune)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup), reduction_factor=3)
    return optuna.pruners.NopPruner()
