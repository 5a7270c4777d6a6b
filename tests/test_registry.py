"""Registry and discovery: names, ambiguity, collisions, broken plugins, disabling."""

from __future__ import annotations

import sys

import pytest

import engine
from engine._contract.errors import ConfigError, PluginError
from engine._plugins.manager import PluginManager
from engine._plugins.registry import Registry

PLUGIN = """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_models():
    return [Component("{model}", "engine._builtins.models:MLP", "an MLP under another name")]

@hookimpl
def engine_recipes():
    return [Recipe("quick", {{"model": "{model}", "data": "synthetic"}}, "a recipe")]
"""


def test_core_components_are_registered_through_the_hooks() -> None:
    reg = Registry(PluginManager(discover=False))  # only the core, whatever else is installed
    assert reg.manager.plugins["core"].hooks  # the built-in plugin uses the public hooks
    assert {"core.mlp"} <= set(reg.names("model"))
    assert {"core.adamw", "core.sgd", "core.adam", "core.rmsprop"} == set(reg.names("optimizer"))
    assert {"core.cosine", "core.step", "core.onecycle", "core.reduce_on_plateau"} == set(reg.names("scheduler"))
    assert {"core.csv", "core.synthetic"} == set(reg.names("data"))
    assert engine.list_components("loss", "*entropy*") == ["core.cross_entropy"]


def test_qualified_and_short_names(plugin_site) -> None:
    plugin_site("alpha", PLUGIN.format(model="net"))
    reg = Registry(PluginManager())
    assert reg.resolve("model", "alpha.net").qualified_name == "alpha.net"
    assert reg.resolve("model", "net").qualified_name == "alpha.net"
    assert reg.resolve("recipe", "alpha/quick").qualified_name == "alpha/quick"
    assert reg.resolve("recipe", "quick").plugin == "alpha"
    info = reg.manager.plugins["alpha"]
    assert (info.distribution, info.version) == ("engine-alpha", "1.0")


def test_ambiguous_short_name_lists_candidates(plugin_site) -> None:
    plugin_site("alpha", PLUGIN.format(model="net"))
    plugin_site("beta", PLUGIN.format(model="net"))
    reg = Registry(PluginManager())
    with pytest.raises(ConfigError) as err:
        reg.resolve("model", "net")
    assert "ambiguous" in err.value.message
    assert "alpha.net" in err.value.message and "beta.net" in err.value.message


def test_core_wins_short_names(plugin_site) -> None:
    plugin_site("alpha", PLUGIN.format(model="mlp"))
    reg = Registry(PluginManager())
    assert reg.resolve("model", "mlp").qualified_name == "core.mlp"
    assert reg.resolve("model", "alpha.mlp").plugin == "alpha"


def test_same_plugin_name_from_two_distributions_names_both(plugin_site) -> None:
    plugin_site("alpha", PLUGIN.format(model="net"), dist="engine-alpha", module="first_alpha")
    plugin_site("alpha", PLUGIN.format(model="net"), dist="alpha-fork", module="second_alpha")
    manager = PluginManager()  # no longer an error for every command: one of them keeps the name
    (refused,) = manager.refused
    assert refused.status == "broken" and "engine-alpha" in refused.error and "alpha-fork" in refused.error
    assert manager.plugins["alpha"].distribution != refused.distribution
    assert "alpha.net" in Registry(manager).names("model")
    # Disabling the contested name leaves both out.
    assert "alpha.net" not in Registry(PluginManager(disable=["alpha"])).names("model")


def test_unknown_name_suggests() -> None:
    reg = Registry(PluginManager())
    with pytest.raises(ConfigError, match=r"unknown model 'mlpp' — did you mean 'mlp'"):
        reg.resolve("model", "mlpp")


BROKEN_IMPORT = "raise RuntimeError('boom at import')\n"
BROKEN_HOOK = """
from engine import hookimpl

@hookimpl
def engine_models():
    raise ValueError('boom in hook')
"""
UNKNOWN_HOOK = """
from engine import hookimpl

@hookimpl
def engine_modles():
    return []
"""
BAD_DECLARATION = """
from engine import hookimpl

@hookimpl
def engine_models():
    return ["not a component"]
"""


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (BROKEN_IMPORT, "boom at import"),
        (BROKEN_HOOK, "boom in hook"),
        (UNKNOWN_HOOK, "engine_modles"),
        (BAD_DECLARATION, "expected Component"),
    ],
)
def test_broken_plugin_is_isolated(plugin_site, code: str, message: str) -> None:
    plugin_site("bad", code, dist="engine-bad", version="0.3")
    plugin_site("good", PLUGIN.format(model="net"))
    reg = Registry(PluginManager())
    bad = reg.manager.plugins["bad"]
    assert bad.status == "broken" and message in (bad.error or "")
    assert (bad.distribution, bad.version) == ("engine-bad", "0.3")
    assert reg.resolve("model", "net").plugin == "good"  # everything else keeps working
    assert "core.mlp" in reg.names("model")


def test_broken_plugin_loses_all_its_components(plugin_site) -> None:
    plugin_site(
        "half",
        """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("ok", "engine._builtins.models:MLP")]

@hookimpl
def engine_losses():
    raise RuntimeError("half broken")
""",
    )
    reg = Registry(PluginManager())
    assert reg.manager.plugins["half"].status == "broken"
    with pytest.raises(ConfigError) as err:
        reg.resolve("model", "half.ok")
    assert "half broken" in (err.value.hint or "")


def test_disable_by_argument_and_environment(plugin_site, monkeypatch) -> None:
    plugin_site("alpha", PLUGIN.format(model="net"))
    assert Registry(PluginManager(disable=["alpha"])).manager.plugins["alpha"].status == "disabled"
    monkeypatch.setenv("ENGINE_DISABLE_PLUGINS", "alpha, other")
    reg = Registry(PluginManager())
    assert reg.manager.plugins["alpha"].status == "disabled"
    assert "alpha.net" not in reg.names("model")
    with pytest.raises(PluginError):
        PluginManager(disable=["core"])


def test_duplicate_component_in_one_plugin_is_reported(plugin_site) -> None:
    plugin_site(
        "dup",
        """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("a", "x:y"), Component("a", "x:z")]
""",
    )
    reg = Registry(PluginManager())
    assert "declares the model 'a' twice" in (reg.manager.plugins["dup"].error or "")


def test_list_patterns_and_create() -> None:
    assert "core.mlp" in engine.list_components("model", "ml*")
    assert all(name.split(".")[1].startswith("ml") for name in engine.list_components("model", "ml*"))
    assert engine.list_components("model", "core.*") == ["core.mlp"]
    model = engine.create("model", "mlp", in_features=5, out_features=3, hidden=[8])
    import torch

    assert model(torch.randn(2, 5)).shape == (2, 3)
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        engine.create("model", "mlp", in_features=5, out_features=3, hiden=[8])


def test_discovery_cache_follows_installs_and_edits(plugin_site, request) -> None:
    from engine._plugins.discovery import cache_file

    # the module written below by hand, not by plugin_site, is imported: forget it, or a later test's own
    # engine_beta_plugin (test_names' twin recipe) would be this one from sys.modules
    request.addfinalizer(lambda: sys.modules.pop("engine_beta_plugin", None))

    assert "alpha" not in PluginManager().plugins
    assert cache_file().exists()  # the first discovery wrote the cache
    site = plugin_site("alpha", PLUGIN.format(model="net"))  # installed after: a new fingerprint
    assert PluginManager().plugins["alpha"].status == "ok"
    # an entry point rewritten in place (reinstalling over the same version) is seen too
    (site / "engine_beta_plugin.py").write_text(PLUGIN.format(model="other"))
    eps = site / "engine_alpha-1.0.dist-info" / "entry_points.txt"
    eps.write_text("[engine.plugins]\nbeta = engine_beta_plugin\n")
    import importlib

    importlib.invalidate_caches()
    names = PluginManager().plugins
    assert "beta" in names and "alpha" not in names


def test_discovery_cache_survives_a_corrupt_file_and_keeps_api_verdicts(plugin_site) -> None:
    from engine._plugins.discovery import cache_file

    plugin_site("old", "ENGINE_API = '<1'\n" + PLUGIN.format(model="net"))
    cache_file().parent.mkdir(parents=True, exist_ok=True)
    cache_file().write_text("{not json")
    for _ in range(2):  # computed, then read back from the cache
        info = PluginManager().plugins["old"]
        assert info.status == "incompatible" and "supports engine API <1" in (info.error or "")
