"""Benchmarks: ``python -m bench.run`` (see its docstring); the older single-purpose scripts beside it."""
