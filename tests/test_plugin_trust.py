"""Plugins that misbehave (issue 33): an interrupt at import, a name taken from another plugin, garbage from a
hook, output on stdout, a slow import; and disabling one of two distributions of a plugin name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine._contract.errors import PluginError
from engine._plugins import manager as manager_module
from engine._plugins.manager import PluginManager
from engine._plugins.registry import Registry
from engine.testing import run_cli

PLUGIN = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine._builtins.models:MLP", "an MLP under another name")]
"""


def installed_at(site: Path, dist: str, seconds: int, version: str = "1.0") -> None:
    """Pretend distribution ``dist`` was installed ``seconds`` after the epoch (install order decides names)."""
    os.utime(site / f"{dist.replace('-', '_')}-{version}.dist-info", ns=(seconds * 10**9, seconds * 10**9))


# --------------------------------------------------------------------------- 6: interrupts at import


@pytest.mark.parametrize(
    "code",
    [
        "raise KeyboardInterrupt('mine')\n",
        "raise GeneratorExit('odd')\n",
        "class Odd(BaseException):\n    pass\nraise Odd('very odd')\n",
        "from engine import hookimpl\n\n@hookimpl\ndef engine_models():\n    raise KeyboardInterrupt('in a hook')\n",
    ],
)
def test_a_plugin_raising_a_base_exception_is_broken_and_the_cli_goes_on(plugin_site, cli, code: str) -> None:
    plugin_site("grabby", code)
    out = cli("plugins", "list")
    assert out.returncode == 0, out.stderr
    assert "grabby" in out.stdout and "broken" in out.stdout and "interrupted" not in out.stderr
    for args in (["plugins", "disable", "grabby"], ["plugins", "enable", "grabby"]):
        assert cli(*args).returncode == 0
    assert cli("run", "model=mlp", "data=synthetic", "--dry-run").returncode == 0


def test_a_real_ctrl_c_during_a_plugin_import_still_interrupts(plugin_site) -> None:
    plugin_site("slowpoke", "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(20)\n")
    out = run_cli("plugins", "list")
    assert out.returncode == 130 and "interrupted" in out.stderr, out.stderr


# --------------------------------------------------------------------------- 7: names held, not hijacked

DEPLOY = """
from engine import hookimpl

@hookimpl
def engine_add_commands(subparsers):
    for name in ("shipper", "predict", "serve"):
        subparsers.add_parser(name, help=f"the genuine {name}").set_defaults(handler="os:getcwd")
"""
HIJACK = """
from engine import hookimpl

@hookimpl
def engine_add_commands(subparsers):
    subparsers.add_parser("{command}", help="a hijacker").set_defaults(handler="os:getcwd")
"""


def test_a_later_plugin_cannot_take_a_command_from_one_earlier_in_the_alphabet(plugin_site, cli) -> None:
    site = plugin_site("shipper", DEPLOY)
    plugin_site("bp_cmd_serve", HIJACK.format(command="serve"), dist="bp-cmd-serve")
    installed_at(site, "engine-shipper", 1000)
    installed_at(site, "bp-cmd-serve", 2000)  # installed after engine-shipper
    out = cli("--help")
    assert "the genuine serve" in out.stdout and "the genuine predict" in out.stdout
    listed = cli("plugins", "list")
    assert listed.returncode == 0
    status = {line.split()[0]: line.split()[3] for line in listed.stdout.splitlines()[1:] if "1.0" in line}
    assert status["shipper"] == "ok" and status["bp_cmd_serve"] == "broken"
    message = next(line for line in listed.stdout.splitlines() if "bp_cmd_serve (" in line)
    assert "'serve'" in message and "'shipper'" in message and "installed first" in message, message
    assert "engine plugins disable shipper" in message  # how to choose the newcomer's instead


def test_a_command_named_like_a_plugin_is_that_plugins(plugin_site, cli) -> None:
    site = plugin_site("shipper", DEPLOY)
    plugin_site("aaa", HIJACK.format(command="shipper"), dist="aaa-tools")
    installed_at(site, "aaa-tools", 1000)  # installed first, but 'shipper' is the shipper plugin's own name
    installed_at(site, "engine-shipper", 2000)
    assert "the genuine shipper" in cli("--help").stdout
    listed = cli("plugins", "list").stdout
    message = next(line for line in listed.splitlines() if "aaa (" in line)
    assert "'shipper'" in message and "named after it" in message, message


SECTION = """
from engine import Section, hookimpl

@hookimpl
def engine_config_sections():
    return [Section("{section}", "engine._builtins.sections:Run", "{summary}")]
"""


def test_a_section_named_like_a_plugin_is_that_plugins(plugin_site) -> None:
    site = plugin_site("secrecy", SECTION.format(section="secrecy", summary="the genuine one"))
    plugin_site("bp", SECTION.format(section="secrecy", summary="a hijacker"), dist="bp-tools")
    installed_at(site, "bp-tools", 1000)  # installed first, and alphabetically first
    installed_at(site, "engine-secrecy", 2000)
    reg = Registry(PluginManager())
    assert reg.manager.plugins["secrecy"].status == "ok"
    assert reg.resolve("section", "secrecy").summary == "the genuine one"
    bp = reg.manager.plugins["bp"]
    assert bp.status == "broken" and "'secrecy'" in (bp.error or "") and "named after it" in (bp.error or "")


def test_a_contested_section_stays_with_the_plugin_installed_first(plugin_site) -> None:
    site = plugin_site("zeta", SECTION.format(section="shared", summary="zeta's"))
    plugin_site("alpha", SECTION.format(section="shared", summary="alpha's"))
    installed_at(site, "engine-zeta", 1000)
    installed_at(site, "engine-alpha", 2000)
    reg = Registry(PluginManager())
    assert reg.resolve("section", "shared").summary == "zeta's"
    alpha = reg.manager.plugins["alpha"]
    assert alpha.status == "broken" and "zeta" in (alpha.error or "") and "installed first" in (alpha.error or "")


EXTEND = """
from engine import hookimpl

@hookimpl
def engine_add_commands(subparsers):
    subparsers.extend("run").add_argument("--folds", type=int, help="{who}")
"""


def test_an_option_of_a_command_stays_with_the_plugin_installed_first(plugin_site, cli) -> None:
    site = plugin_site("kfold", EXTEND.format(who="the genuine folds"))
    plugin_site("aaa", EXTEND.format(who="a hijacker"), dist="aaa-tools")
    installed_at(site, "engine-kfold", 1000)
    installed_at(site, "aaa-tools", 2000)
    assert "the genuine folds" in cli("run", "--help").stdout
    listed = cli("plugins", "list").stdout
    message = next(line for line in listed.splitlines() if "aaa (" in line)
    assert "--folds" in message and "plugin 'kfold'" in message, message


# --------------------------------------------------------------------------- 8: garbage from hooks


@pytest.mark.parametrize(
    ("hook", "body", "kwargs", "shown"),
    [
        ("engine_callbacks", "return [42, 'x']", {"config": {}}, "[42, 'x']"),
        ("engine_run_finished", "return 'done'", {"run": None}, "'done'"),
        ("engine_adjust_config", "config['trainer'] = 'garbage'", {"config": {"trainer": {}}}, "'garbage'"),
        ("engine_adjust_config", "config['seed'] = object", {"config": {"seed": 0}}, "<class 'object'>"),
        ("engine_adjust_config", "config['model']['name'] = 7", {"config": {"model": {"name": "a"}}}, "7"),
    ],
)
def test_garbage_from_a_lifecycle_hook_names_the_plugin_and_breaks_it(plugin_site, hook, body, kwargs, shown) -> None:
    argument = next(iter(kwargs))
    plugin_site("junk", f"from engine import hookimpl\n\n@hookimpl\ndef {hook}({argument}):\n    {body}\n")
    manager = PluginManager()
    with pytest.raises(PluginError) as err:
        manager.call(hook, **kwargs)
    assert "plugin 'junk'" in err.value.message and hook in err.value.message and shown in err.value.message
    assert manager.plugins["junk"].status == "broken"
    assert PluginManager().plugins["junk"].status == "broken"  # recorded: the next command leaves it out


def test_garbage_config_from_adjust_config_is_the_plugins_fault_not_the_users(plugin_site, cli) -> None:
    plugin_site(
        "junk",
        "from engine import hookimpl\n\n@hookimpl\ndef engine_adjust_config(config):\n"
        "    config['trainer'] = 'garbage'\n",
    )
    out = cli("run", "model=mlp", "data=synthetic", "--dry-run")
    assert out.returncode == 2 and "plugin 'junk'" in out.stderr and "engine_adjust_config" in out.stderr, out.stderr
    assert cli("run", "model=mlp", "data=synthetic", "--dry-run").returncode == 0  # without it from now on


def test_garbage_from_a_collection_hook_leaves_the_plugin_out(plugin_site, tmp_path: Path) -> None:
    import engine

    plugin_site("junk", "from engine import hookimpl\n\n@hookimpl\ndef engine_run_collection(path):\n    return 3\n")
    assert engine.run_collection(tmp_path) is None
    info = engine.get_registry().manager.plugins["junk"]
    assert info.status == "broken" and "engine_run_collection" in (info.error or "") and "3" in (info.error or "")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("42", "returned 42"), ("[Component('ok', 'x:y'), 42]", "returned [Component(")],
)
def test_garbage_declarations_show_the_value_returned(plugin_site, cli, value: str, shown: str) -> None:
    plugin_site(
        "junk", f"from engine import Component, hookimpl\n\n@hookimpl\ndef engine_models():\n    return {value}\n"
    )
    out = cli("plugins", "list")
    assert out.returncode == 0, out.stderr
    info = Registry(PluginManager()).manager.plugins["junk"]
    assert info.status == "broken" and shown in (info.error or ""), info.error


# --------------------------------------------------------------------------- 9: stdout, disabling, slow imports

NOISY = """
print("NOISE at import")
from engine import hookimpl

@hookimpl
def engine_adjust_config(config):
    print("NOISE in a hook")
"""


def test_a_plugin_printing_does_not_corrupt_the_commands_output(plugin_site, cli) -> None:
    plugin_site("noisy", NOISY)
    out = cli("run", "model=mlp", "data=synthetic", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "NOISE" not in out.stdout and yaml.safe_load(out.stdout)["model"]["name"] == "core.mlp"
    assert "NOISE at import" in out.stderr and "NOISE in a hook" in out.stderr


def _duplicate_optics(plugin_site: Any) -> None:
    site = plugin_site("optics", PLUGIN, dist="engine-optics", module="genuine_optics")
    plugin_site("optics", PLUGIN, dist="optics-fork", module="fork_optics")
    installed_at(site, "engine-optics", 1000)
    installed_at(site, "optics-fork", 2000)


def test_disabling_a_name_two_distributions_provide_must_say_which(plugin_site, cli) -> None:
    _duplicate_optics(plugin_site)
    out = cli("plugins", "disable", "optics")
    assert out.returncode == 2 and "engine-optics" in out.stderr and "optics@optics-fork" in out.stderr, out.stderr
    assert PluginManager().plugins["optics"].status == "ok"  # nothing was disabled
    assert cli("plugins", "disable", "optics@optics-fork").returncode == 0
    manager = PluginManager()
    assert manager.plugins["optics"].distribution == "engine-optics" and manager.plugins["optics"].status == "ok"
    (fork,) = manager.refused
    assert fork.distribution == "optics-fork" and fork.status == "disabled"
    # Choosing the other distribution: disable the genuine one, the fork takes the name.
    assert cli("plugins", "enable", "optics@optics-fork").returncode == 0
    assert cli("plugins", "disable", "optics@engine-optics").returncode == 0
    manager = PluginManager()
    assert manager.plugins["optics"].distribution == "optics-fork" and manager.plugins["optics"].status == "ok"
    assert cli("--disable", "optics", "plugins", "list").returncode == 2  # ambiguous for one command too


def test_disabling_an_unknown_plugin_is_refused(plugin_site, cli) -> None:
    plugin_site("alpha", PLUGIN)
    out = cli("--disable", "alpah", "plugins", "list")
    assert out.returncode == 2 and "unknown plugin 'alpah'" in out.stderr and "did you mean 'alpha'" in out.stderr
    assert cli("--disable", "alpha", "plugins", "list").returncode == 0
    assert cli("--disable=alpha", "components", "list").returncode == 0


def test_a_slow_import_is_timed_noted_and_listed(plugin_site, cli, monkeypatch) -> None:
    monkeypatch.setattr(manager_module, "SLOW_IMPORT_S", 0.05)
    plugin_site("sloth", "import time\ntime.sleep(0.1)\n" + PLUGIN)
    out = cli("plugins", "list")
    assert out.returncode == 0
    assert "plugin 'sloth'" in out.stderr and "s to import" in out.stderr, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("slow"))
    assert "sloth" in line and "engine plugins disable sloth" in line
    assert PluginManager().plugins["sloth"].import_s >= 0.0  # type: ignore[attr-defined]
