"""engine-tabular: the conformance kit, preprocessing, learning, and mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_tabular.data import Churn, TabularCSV

import engine
from engine import ConfigError
from engine.testing import check_plugin, train_run


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rows = ["size,colour,weight,label"]
    for i in range(60):
        colour = ["red", "green", "blue"][i % 3]
        weight = "" if i % 10 == 0 else str(i % 7)
        rows.append(f"{i % 5},{colour},{weight},{'heavy' if i % 7 > 3 else 'light'}")
    return write(tmp_path / "t.csv", "\n".join(rows) + "\n")


def test_plugin_passes_the_conformance_kit(table: Path, tmp_path: Path) -> None:
    passed = check_plugin(
        "tabular", run_dir=tmp_path / "runs", data_params={"tabular.csv": {"path": str(table)}, "tabular.churn": {}}
    )
    assert "recipe 'tabular/churn' completes fast_dev_run" in passed
    assert "model 'tabular.embedding_mlp' forward/backward" in passed


def test_columns_are_typed_standardised_and_indexed_on_the_training_split(table: Path) -> None:
    data = TabularCSV(str(table))
    assert data.categorical == ["colour"] and data.numeric == ["size", "weight"]
    facts = data.facts
    assert facts["num_numeric"] == 2 and facts["cardinalities"] == [4]  # red, green, blue + missing/unseen
    assert facts["class_names"] == ["heavy", "light"] and facts["input_shape"] == [3]
    train_x = data.datasets()["train"].x
    assert torch.allclose(train_x[:, 0].mean(), torch.tensor(0.0), atol=1e-5)
    assert not train_x.isnan().any()  # the blank weights became the training mean (0 after scaling)
    # unseen or missing categories get code 0; numbers are scaled with the training statistics
    x = data.encode({"size": ["2", "2"], "colour": ["purple", "green"], "weight": ["", "3"]}, "rows")
    assert x[0, 2] == 0 and x[1, 2] == 1 + data.vocab["colour"].index("green") and x[0, 1] == 0
    assert x[0, 0] == pytest.approx(float((2 - data.mean[0]) / data.std[0]))
    one = write(table.parent / "one.csv", "colour,weight,size\ngreen,3,2\n")
    assert torch.equal(data.load_input(one), x[1])


def test_churn_learns_far_above_the_majority_class(tmp_path: Path) -> None:
    overrides = ["data.num_rows=3000", "trainer.max_epochs=6"]
    summary = train_run(*overrides, root=tmp_path, recipe="tabular/churn", name="churn").summary
    facts = json.loads((tmp_path / "churn" / "facts.json").read_text())
    data = Churn(num_rows=3000)
    test_y = data.y[data.split["test"]]
    majority = max(test_y.float().mean().item(), 1 - test_y.float().mean().item())
    accuracy = summary["metrics"]["test/accuracy"]
    assert accuracy > majority + 0.05, (accuracy, majority)
    assert accuracy <= facts["bayes_accuracy"] + 0.05  # nothing beats the true probabilities by much


def test_regression_label(tmp_path: Path) -> None:
    rows = ["kind,x,y"] + [f"{'ab'[i % 2]},{i % 9},{(i % 9) * 2 + (i % 2)}" for i in range(80)]
    path = write(tmp_path / "r.csv", "\n".join(rows) + "\n")
    data = TabularCSV(str(path), label="y", problem="regression")
    assert data.facts["problem"] == "regression" and data.facts["out_features"] == 1
    overrides = ["model=tabular.embedding_mlp", "data=tabular.csv", f"data.path={path}", "data.label=y"]
    overrides += ["data.problem=regression", "trainer.max_epochs=2"]
    assert "test/mae" in train_run(*overrides, root=tmp_path).summary["metrics"]


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        ("a,label\n1,x\n", ["data.label=target"], "no label column 'target'; columns are a, label"),
        ("a,label\n", [], "no data rows"),
        ("", [], "is empty: expected a header row"),
        ("a,label\n1,x\n2\n", [], "line 3: 1 fields, the header has 2"),
        ("a,b,label\n1,2,x\n", ["data.categorical=[c]"], "no feature column(s) c"),
        ("a,label\n1,x\nlots,y\n", ["data.numeric=[a]"], "numeric column 'a' holds 'lots'"),
        ("a,label\n1,x\n2,\n", [], "row 2 has an empty label"),
    ],
)
def test_mistakes_get_one_clear_message(tmp_path: Path, text: str, params: list[str], message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    overrides = ["model=tabular.embedding_mlp", "data=tabular.csv", f"data.path={path}", *params, f"run.dir={tmp_path}"]
    with pytest.raises(ConfigError) as err:
        engine.train(engine.plan(engine.compose(overrides=overrides)))
    assert message in err.value.message
    assert not any((tmp_path).glob("*/config.yaml"))  # nothing is left behind


def test_the_command_line_says_it_in_one_line(cli: Any, tmp_path: Path) -> None:
    out = cli("run", "model=tabular.embedding_mlp", "data=tabular.csv", f"data.path={tmp_path / 'no.csv'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: data.path: no such file or directory" in out.stderr
