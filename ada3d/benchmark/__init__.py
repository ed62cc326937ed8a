"""Benchmarks behind ``tools/benchmark.py``: timing helpers and one module per benchmark."""
