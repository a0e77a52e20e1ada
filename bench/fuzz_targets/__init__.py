"""Fuzz targets: plain functions from bytes to an outcome, for the tests and bench/fuzz.py."""
