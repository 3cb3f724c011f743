"""Thin command-line scripts over the importable packages."""
