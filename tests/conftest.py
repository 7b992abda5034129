"""Shared fixtures."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """The suite runs real Work Queue workers: without cctools it stops at once, saying how to
    install it, instead of skipping those tests (scripts/bootstrap.sh installs it)."""
    import shutil

    from shadho.managers.workqueue import import_work_queue

    missing = [t for t in ("work_queue_worker", "catalog_server") if shutil.which(t) is None]
    try:
        import_work_queue()
    except ImportError as e:
        missing.append(f"the work_queue module ({e})")
    if missing:
        pytest.exit(f"Work Queue is missing: {', '.join(missing)}; run scripts/bootstrap.sh", returncode=1)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh results-file path."""
    return str(tmp_path / "results.db")


@pytest.fixture(autouse=True)
def _venv_bin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools installed in the venv (the `shadho` script) are found by subprocesses."""
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
