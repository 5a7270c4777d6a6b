"""The plugin author's experience: scaffold, install, conformance, compatibility, enable/disable."""

from __future__ import annotations

from pathlib import Path

from engine._plugins.manager import PluginManager
from engine.testing import run_cli

COMPAT = """
from engine import Component, hookimpl

ENGINE_API = {spec!r}

@hookimpl
def engine_models():
    return [Component("net", "engine._builtins.models:MLP")]
"""


def test_incompatible_plugin_is_reported_and_skipped(plugin_site) -> None:
    plugin_site("future", COMPAT.format(spec=">=2"))
    plugin_site("current", COMPAT.format(spec=">=1,<2"))
    plugin_site("nonsense", COMPAT.format(spec="one point oh"))
    plugins = PluginManager().plugins
    assert plugins["future"].status == "incompatible"
    assert "supports engine API >=2, this engine provides API 1" in (plugins["future"].error or "")
    assert plugins["current"].status == "ok"
    assert plugins["nonsense"].status == "incompatible" and "not a version specifier" in (
        plugins["nonsense"].error or ""
    )
    listing = run_cli("plugins", "list")
    assert listing.returncode == 0 and "incompatible" in listing.stdout


def test_disable_and_enable_are_persisted(plugin_site, tmp_path: Path) -> None:
    plugin_site("togg", COMPAT.format(spec=">=1"))
    out = run_cli("plugins", "disable", "togg")
    assert out.returncode == 0 and "disabled" in out.stdout
    assert (tmp_path / "home" / "settings.json").is_file()
    assert PluginManager().plugins["togg"].status == "disabled"
    assert "disabled" in run_cli("plugins", "list").stdout
    assert run_cli("run", "model=togg.net", "data=synthetic", "--dry-run").returncode == 2
    assert run_cli("plugins", "enable", "togg").returncode == 0
    assert PluginManager().plugins["togg"].status == "ok"
    assert run_cli("plugins", "disable", "core").returncode == 2
    assert "did you mean 'togg'" in run_cli("plugins", "disable", "tog").stderr


def test_plugins_info_says_exactly_what_is_wrong(plugin_site) -> None:
    plugin_site("nowhere", "", module="module_that_is_not_there")
    site = plugin_site(
        "faults",
        """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_models():
    return [Component("ghost", "faults_impl:Ghost"), Component("lost", "no_such_pkg.models:Net")]

@hookimpl
def engine_recipes():
    return [Recipe("stale", {"model": "faults.removed", "data": "synthetic"})]
""",
    )
    (site / "faults_impl.py").write_text("class Other:\n    pass\n")
    (site / "module_that_is_not_there.py").unlink()
    out = run_cli("plugins", "info", "faults")
    assert out.returncode == 1
    assert "faults.ghost: 'Ghost' not found in module 'faults_impl'" in out.stdout
    assert "faults.lost: target module 'no_such_pkg.models' not found" in out.stdout
    assert "faults/stale: recipe does not validate: unknown model 'faults.removed'" in out.stdout
    out = run_cli("plugins", "info", "nowhere")
    assert out.returncode == 1 and "import of 'module_that_is_not_there' failed" in out.stdout
