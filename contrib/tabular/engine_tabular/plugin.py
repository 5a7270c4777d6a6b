"""Hook implementations: declarations only (no torch import), as every plugin module should be.

This plugin is written only against engine's public API (``engine.Component``,
``engine.Recipe``, ``engine.hookimpl``, ``engine.ConfigError`` and
``engine.data``), the way a third party would write one.
"""

from __future__ import annotations

from engine import Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"

_FACTS = (
    "problem",
    "num_classes",
    "out_features",
    "class_names",
    "in_features",
    "input_shape",
    "num_numeric",
    "cardinalities",
    "feature_names",
    "preprocessing",
)


@hookimpl
def engine_models() -> list[Component]:
    return [
        Component(
            "embedding_mlp",
            "engine_tabular.models:EmbeddingMLP",
            "Categorical embeddings + numeric features into an MLP",
        )
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    m = "engine_tabular.data"
    return [
        Component("csv", f"{m}:TabularCSV", "A CSV table with numeric and categorical columns", facts=_FACTS),
        Component(
            "churn", f"{m}:Churn", "Seeded customer-churn table (numeric + categorical, interactions)", facts=_FACTS
        ),
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "churn",
            "engine_tabular:recipes/churn.yaml",
            "Embedding MLP on the churn table: test accuracy within 3 % of the Bayes classifier's",
            targets=("test/accuracy >= 0.97 * facts/bayes_accuracy",),
        )
    ]
