"""Conformance kit for plugin authors (also registered as a pytest plugin)."""
