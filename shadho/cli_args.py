"""What every ``shadho`` subcommand shares: exit statuses, the argument types, the parser
class whose usage errors carry the one ``shadho: error:`` prefix, and the message for a
missing optional package.

Example:
    >>> whole_number(1)('3'), positive_seconds('2.5')
    (3, 2.5)
    >>> whole_number(0)('-1')
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a whole number >= 0, got '-1'
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

from shadho.errors import CliError

__all__ = ["OK", "ERROR", "USAGE", "PREFIX", "Parser", "whole_number", "positive_seconds",
           "positive_hours", "missing_extra"]

#: Exit statuses.
OK, ERROR, USAGE = 0, 1, 2

#: How every error of the command line starts.
PREFIX = "shadho: error: "

#: pip requirement that provides an optional top-level module.
PIP = {"rich": "shadho[cli]", "matplotlib": "shadho[cli]", "sklearn": "scikit-learn",
       "work_queue": "ndcctools (conda install -c conda-forge ndcctools)", "pandas": "pandas"}


class Parser(argparse.ArgumentParser):
    """Usage errors as one line naming where to find help (exit status 2)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(USAGE, f"{PREFIX}{message} (see '{self.prog} --help')\n")


def whole_number(minimum: int) -> Callable[[str], int]:
    """The argument type of a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


def _positive(text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {unit}, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of {unit}, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """The argument type of a positive number of seconds."""
    return _positive(text, "seconds")


def positive_hours(text: str) -> float:
    """The argument type of a positive number of hours."""
    return _positive(text, "hours")


def missing_extra(command: str, module: str) -> CliError:
    """The error for an optional package ``module`` that ``command`` needs."""
    return CliError(f"shadho {command} needs {module}: pip install '{PIP.get(module, module)}'")
