"""The version of regops: its own module, so that any module can read it without importing the package front."""

__version__ = "0.1.0"
