"""engine-experiments: what you do with several runs, as a first-party plugin on the public API.

- cross-validation: ``engine run … --folds K [--group-by COLUMN]`` (`.crossval`, `.folds`);
- pipelines: ``engine pipeline FILE``, stages that are runs or plugins' steps (`.pipeline`);
- ``engine runs list`` / ``runs compare``, ``engine report``, ``engine evaluate [--ensemble]``;
- run collections: cross-validation parents and pipeline directories describe themselves
  (``engine_run_collection``), so every command that reads runs expands or summarises them;
- the recipe matrix (`.matrix`): recipes' targets over seeds x thread counts.

Importing this package imports nothing heavy; each module imports torch only where it trains or predicts.
"""
