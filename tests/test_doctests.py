"""Run the examples in the docstrings of every module of the package (found, not listed:
a new module is covered without anyone remembering to add it) and of the modules shipped
to workers."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import shadho


def _modules() -> list[str]:
    found = ["shadho"] + sorted(m.name for m in pkgutil.walk_packages(shadho.__path__, "shadho."))
    return found + ["shadho_launch_worker"]


MODULES = _modules()


def test_every_module_of_the_package_is_found() -> None:
    assert {"shadho.driver", "shadho.stop_signals", "shadho.samplers.startup", "shadho.sim_work"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
