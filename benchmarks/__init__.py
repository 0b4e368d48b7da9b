"""Benchmarks (`make bench`): figures are medians of repeated runs, measured side by side."""
