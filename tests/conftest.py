"""Shared fixtures."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh results-file path."""
    return str(tmp_path / "results.db")


@pytest.fixture(autouse=True)
def _venv_bin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools installed in the venv (the `shadho` script) are found by subprocesses."""
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
