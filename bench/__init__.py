"""Benchmark scripts (print medians of repeated runs with a baseline measured in the same run)."""
