"""``python -m engine.cli``, the command's module before core v3: still the ``engine`` command."""

from engine._cli.main import entrypoint, main

__all__ = ["main"]

if __name__ == "__main__":
    entrypoint()
