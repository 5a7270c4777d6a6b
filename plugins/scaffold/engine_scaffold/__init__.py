"""engine-scaffold: ``engine new plugin NAME`` writes a plugin package that passes its own tests."""

__version__ = "0.1.0"
