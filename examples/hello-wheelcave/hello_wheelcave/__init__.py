"""A tiny package to try wheelcave with."""

__version__ = "0.1.0"


def main() -> None:
    print("hello from a package served by wheelcave")
