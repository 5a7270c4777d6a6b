"""engine-tabular: mixed numeric/categorical tables for engine (a third-party-style plugin)."""
