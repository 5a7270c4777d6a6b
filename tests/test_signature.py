from __future__ import annotations

import pytest

from engine._config.signature import REQUIRED, parse_param_docs, read_signature
from engine._config.types import check_type, describe


def test_reads_function_parameters_docs_and_defaults_without_import() -> None:
    sig = read_signature("engine._builtins.optim:adamw")
    assert sig is not None
    assert sig.names == ["params", "lr", "betas", "eps", "weight_decay"]
    lr = sig.get("lr")
    assert (
        lr is not None
        and lr.default == 1e-3
        and lr.annotation == "Annotated[float, Ge(0)]"
        and lr.doc == "learning rate."
    )
    assert sig.get("params").default is REQUIRED  # type: ignore[union-attr]


def test_reads_class_init_and_class_docstring() -> None:
    sig = read_signature("engine._builtins.models:MLP")
    assert sig is not None
    assert sig.get("in_features").required  # type: ignore[union-attr]
    assert sig.get("hidden").default == [128, 128]  # type: ignore[union-attr]
    assert "hidden layer" in sig.get("hidden").doc  # type: ignore[union-attr]


def test_reads_inherited_init_and_dataclasses(tmp_path, monkeypatch) -> None:
    (tmp_path / "sigmod.py").write_text(
        "from dataclasses import dataclass, field\n"
        "class Base:\n"
        "    def __init__(self, a: int, b: str = 'x', **kw):\n"
        "        pass\n"
        "class Child(Base):\n"
        "    pass\n"
        "@dataclass\n"
        "class Conf:\n"
        "    n: int = 3\n"
        "    xs: list[int] = field(default_factory=list)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    child = read_signature("sigmod:Child")
    assert child is not None and child.names == ["a", "b"] and child.open
    conf = read_signature("sigmod:Conf")
    assert conf is not None and conf.get("n").default == 3  # type: ignore[union-attr]
    assert read_signature("sigmod:Missing") is None
    assert read_signature("no_such_module_xyz:thing") is None


def test_an_edit_to_a_re_exported_targets_module_is_seen(tmp_path, monkeypatch) -> None:
    import os

    from engine._config import signature

    pkg = tmp_path / "reexp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from reexp.models import Net\n")
    models = pkg / "models.py"
    models.write_text("class Net:\n    def __init__(self, width: int = 8):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert read_signature("reexp:Net").get("width").default == 8  # type: ignore[union-attr]
    signature._TREES.clear()  # a later command: only the disk cache is left
    models.write_text("class Net:\n    def __init__(self, width: int = 16, depth: int = 2):\n        pass\n")
    os.utime(models, ns=(1, 1))  # another stamp, whatever the clock's resolution
    again = read_signature("reexp:Net")
    assert again is not None and again.names == ["width", "depth"] and again.get("width").default == 16  # type: ignore[union-attr]


def test_parse_google_docstring() -> None:
    docs = parse_param_docs(
        """Summary.

        Args:
            lr (float): learning rate,
                continued here.
            momentum: factor.

        Returns:
            nothing: not a parameter.
        """
    )
    assert docs == {"lr": "learning rate, continued here.", "momentum": "factor."}


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (3, "int", True),
        (True, "int", False),
        (3, "float", True),
        ("3", "float", False),
        ([1, 2], "list[int]", True),
        ([1, "a"], "list[int]", False),
        ((1, 2), "tuple[int, int]", True),
        ([1, 2, 3], "tuple[int, int]", False),
        ([1, 2, 3], "tuple[int, ...]", True),
        (None, "int | None", True),
        (None, "Optional[int]", True),
        ("relu", "Literal['relu', 'gelu']", True),
        ("tanh", "Literal['relu', 'gelu']", False),
        ({"a": 1}, "dict[str, int]", True),
        (object(), "SomethingUnknown", True),
        ("x", None, True),
    ],
)
def test_check_type(value: object, annotation: str | None, ok: bool) -> None:
    assert check_type(value, annotation) is ok


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        ("Annotated[int, Ge(1)] | None", "int >= 1 | None"),
        ("list[Annotated[float, Gt(0)]]", "list[float > 0]"),
        ("Annotated[list[Annotated[float, Ge(0), Lt(1)]], MinLen(1)]", "list[float in [0, 1)] of length >= 1"),
        ("dict[str, int]", "dict[str, int]"),
    ],
)
def test_describe_reads_constraints_inside_containers(annotation: str, text: str) -> None:
    assert describe(annotation) == text


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (float("inf"), "float", False),
        (float("nan"), "Annotated[float, Ge(0)]", False),
        (float("-inf"), "int | float", False),
        (float("inf"), None, False),  # an unannotated parameter too
        ("nan", "str", True),  # a text is a text (run.name=nan)
        ("inf", "float", False),  # `x=inf` reads as text: refused (and named as a non-finite number)
        ([1.0, float("nan")], "list[float]", False),
        (float("inf"), 'Annotated[float, "allow_inf_nan"]', True),
        (float("inf"), 'Annotated[float, "allow_inf_nan", Ge(0)] | None', True),
        (float("nan"), 'Annotated[float, "allow_inf_nan"] | None', True),
        (0.5, "Annotated[float, Interval(gt=0, le=1)]", True),
        (0.0, "Annotated[float, Interval(gt=0, le=1)]", False),
        (1.0, "Annotated[float, Interval(gt=0, le=1)]", True),
        ([1, 0], "list[Annotated[int, Ge(1)]]", False),
        ((0.9, 1.0), "tuple[Annotated[float, Ge(0), Lt(1)], Annotated[float, Ge(0), Lt(1)]]", False),
    ],
)
def test_floats_are_finite_unless_declared_and_intervals_hold(value: object, annotation: str | None, ok: bool) -> None:
    assert check_type(value, annotation) is ok


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        ("Annotated[float, Interval(gt=0, le=1)]", "float in (0, 1]"),
        ("Annotated[int, Ge(0), Le(4294967295)]", "int in [0, 4294967295]"),
        ('Annotated[float, "allow_inf_nan", Ge(0)]', "float >= 0 (inf, nan allowed)"),
    ],
)
def test_describe_intervals(annotation: str, text: str) -> None:
    assert describe(annotation) == text


def test_a_module_level_range_alias_is_read_through(tmp_path, monkeypatch) -> None:
    (tmp_path / "aliasmod.py").write_text(
        "from typing import Annotated\n"
        "from annotated_types import Ge, Lt\n"
        "Fraction = Annotated[float, Ge(0), Lt(1)]\n"
        "Pair = tuple[Fraction, Fraction]\n"
        "Loop = list[Loop]\n"
        "def f(p: Fraction = 0.1, q: Pair = (0.1, 0.2), r: list[Fraction] | None = None, s: Loop = None):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sig = read_signature("aliasmod:f")
    assert sig is not None
    fraction = "Annotated[float, Ge(0), Lt(1)]"
    assert sig.get("p").annotation == fraction  # type: ignore[union-attr]
    assert sig.get("q").annotation == f"tuple[{fraction}, {fraction}]"  # type: ignore[union-attr]
    assert sig.get("r").annotation == f"list[{fraction}] | None"  # type: ignore[union-attr]
    assert sig.get("s").annotation == "list[Loop]"  # type: ignore[union-attr]  # a self-reference stops
