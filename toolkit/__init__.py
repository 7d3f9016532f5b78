"""Reproducible competition toolkit: recipes that train, export, bundle and verify submissions."""

__version__ = "0.1.0"
