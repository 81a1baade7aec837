"""wheelcave: a private Python package index (hosted, mirror and virtual indexes)."""

__version__ = "0.1.0"
