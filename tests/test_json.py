"""``--json`` of the registry's commands: JSON alone on stdout, in the schemas docs/cli.md documents."""

from __future__ import annotations

import json
from typing import Any

PLUGIN = {"name", "distribution", "version", "status", "module", "error", "components", "import_ms", "hooks"}
COMPONENT = {"kind", "name", "plugin", "summary"}


def _json(cli: Any, *args: str, code: int = 0) -> Any:
    out = cli(*args, "--json")
    assert out.returncode == code, out.stderr
    return json.loads(out.stdout)


def test_plugins_list_and_info(cli: Any) -> None:
    plugins = _json(cli, "plugins", "list")
    core = next(p for p in plugins if p["name"] == "core")
    assert set(core) == PLUGIN and core["status"] == "ok" and core["components"] > 10
    assert "engine_models" in core["hooks"]
    (info,) = _json(cli, "plugins", "info", "core")
    assert set(info) == PLUGIN | {"problems"} and info["problems"] == []
    assert {"kind": "model", "name": "core.mlp", "plugin": "core"}.items() <= info["components"][1].items()


def test_components_list_and_show(cli: Any) -> None:
    listed = _json(cli, "components", "list", "--kind", "optimizer")
    assert all(set(c) == COMPONENT and c["kind"] == "optimizer" for c in listed)
    assert "core.adamw" in [c["name"] for c in listed]
    (mlp,) = _json(cli, "components", "show", "mlp")
    assert set(mlp) == COMPONENT | {"distribution", "version", "target", "facts", "slots", "parameters", "open"}
    hidden = next(p for p in mlp["parameters"] if p["name"] == "hidden")
    assert hidden == {
        "name": "hidden",
        "type": "list[int >= 1]",
        "required": False,
        "default": [128, 128],
        "description": hidden["description"],
    }
    assert next(p for p in mlp["parameters"] if p["name"] == "in_features")["required"] is True
    (recipe,) = _json(cli, "components", "show", "core/mlp-synthetic")
    assert recipe["kind"] == "recipe" and recipe["config"]["model"]["name"] == "mlp" and recipe["required"] == []
