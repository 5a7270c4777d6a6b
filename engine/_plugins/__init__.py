"""Kernel layer 2 (private): finding plugins, calling their hooks through pluggy, the registry, settings."""
