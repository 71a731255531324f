"""The distribution's version, importable from any layer without loading the fluent API."""

__version__ = "0.1.0"
