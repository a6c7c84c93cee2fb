"""Benchmark harness. ``make bench`` runs ``python -m bench``; results are recorded in ``bench/RESULTS.md``."""
