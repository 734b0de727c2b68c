"""The package version, in one place (``hashlearn.__version__``; written into saved files)."""

__version__ = "0.1.0"
