"""Run the examples in the core's docstrings."""

import doctest
import importlib

import pytest

MODULES = ["wheelcave.core.names", "wheelcave.core.filenames", "wheelcave.core.pages", "wheelcave.core.versions",
           "wheelcave.core.redact", "wheelcave.auth.access", "wheelcave.auth.passwords", "wheelcave.auth.oidc"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
