"""What a Work Queue run needs settled before it starts: is Work Queue installed (and the exact
fix when not), which local workers to start, and which catalog a named manager advertises to.

Nothing here imports Work Queue: :func:`require_work_queue` only looks the module up, so
``Shadho(..., manager='workqueue')`` can say what is missing at construction.

Example:
    >>> parse_worker_specs(None, None)          # no local workers unless asked for
    []
    >>> parse_worker_specs(2, None)
    [{'cores': 1}, {'cores': 1}]
    >>> catalog_address({'CATALOG_HOST': 'cat.example.org:9100'})
    'cat.example.org:9100'
"""
from __future__ import annotations

import glob
import importlib.util
import os
import re
import sys
import sysconfig
from typing import Any, Mapping

from shadho.errors import BackendUnavailableError

#: Keys a local worker spec may hold.
WORKER_SPEC_KEYS = ("cores", "memory", "disk", "gpus", "features")
#: Work Queue's own default catalog (cctools' CATALOG_HOST/CATALOG_PORT override it).
DEFAULT_CATALOG = "catalog.cse.nd.edu:9097"
_DEBIAN = "/usr/lib/python3/dist-packages"


def install_hint() -> str:
    """How to make Work Queue importable from this Python, with the exact commands."""
    here = "%d.%d" % sys.version_info[:2]
    sos = sorted(glob.glob(os.path.join(_DEBIAN, "_work_queue.cpython-*.so")))
    built = sorted({f"{m.group(1)}.{m.group(2)}" for m in (re.search(r"cpython-(\d)(\d+)-", p) for p in sos) if m})
    versions = ", ".join(built) or "the distribution's python3"
    folder = os.path.join(sys.prefix, "cctools")
    pth = os.path.join(sysconfig.get_paths()["purelib"], "cctools_work_queue.pth")
    return (f"Work Queue (cctools) is not installed for this Python ({sys.executable}, Python {here}). "
            "Either install it with conda: `conda install -c conda-forge ndcctools` (any Python), "
            "or on Debian/Ubuntu: `apt-get install coop-computing-tools python3-workqueue`, whose "
            f"module is built for Python {versions} only; from such a Python, link just its two "
            f"files into a folder and name that folder in a .pth line: `mkdir -p {folder} && ln -sf "
            f"{_DEBIAN}/work_queue.py {_DEBIAN}/_work_queue.cpython-*.so {folder}/ && "
            f"echo {folder} > {pth}`.")


def require_work_queue() -> None:
    """Raise :class:`BackendUnavailableError` with :func:`install_hint` if Work Queue is missing.

    Looks the module up without importing it (importing creates a staging folder).
    """
    for name in ("ndcctools.work_queue", "work_queue"):
        try:
            if importlib.util.find_spec(name) is not None:
                return
        except (ImportError, ValueError):  # no parent package / a None entry in sys.modules
            continue
    raise BackendUnavailableError(install_hint())


def catalog_address(env: Mapping[str, str] | None = None) -> str:
    """The catalog a named manager advertises to when no ``catalog=`` is given, as cctools
    picks it: ``CATALOG_HOST`` (may hold ``:port``) and ``CATALOG_PORT``, else Notre Dame's."""
    env = os.environ if env is None else env
    host = env.get("CATALOG_HOST")
    if not host:
        return DEFAULT_CATALOG
    if ":" in host:
        return host
    return f"{host}:{env.get('CATALOG_PORT') or '9097'}"


def tune_against_idle_connections(q: Any, seconds: float = 1) -> None:
    """Work Queue waits "short-timeout" seconds (default 5) for a new connection to authenticate
    and dispatches nothing meanwhile: each connection that never authenticates stalls the
    search that long. Bound it (see docs/reliability.md and bench/idle_connections.py)."""
    q.tune("short-timeout", seconds)


def split_catalog(catalog: str) -> tuple[str, int]:
    """``(host, port)`` of a ``catalog=`` given as ``host:port`` or ``host`` (port 9097).

    Example:
        >>> split_catalog('cat.example.org:9100'), split_catalog('cat.example.org')
        (('cat.example.org', 9100), ('cat.example.org', 9097))
    """
    host, _, port = str(catalog).rpartition(":")
    return (host, int(port)) if host else (str(catalog), 9097)


def parse_worker_specs(local_workers: Any, name: str | None = None) -> list[dict[str, Any]]:
    """The local workers to start: None or 0 start none (a master never computes on a login
    node unless asked), an int that many 1-core workers, a list one worker per spec."""
    if local_workers is None:
        return []
    if isinstance(local_workers, bool):
        raise TypeError(f"local_workers must be an int or a list of worker specs, got {local_workers!r}")
    if isinstance(local_workers, int):
        if local_workers < 0:
            raise ValueError(f"local_workers must be >= 0, got {local_workers}")
        return [{"cores": 1} for _ in range(local_workers)]
    if not isinstance(local_workers, (list, tuple)):
        raise TypeError(f"local_workers must be an int or a list of worker specs (dicts with "
                        f"{', '.join(WORKER_SPEC_KEYS)}), got {local_workers!r}")
    specs = []
    for spec in local_workers:
        if not isinstance(spec, dict):
            raise TypeError(f"a local worker spec must be a dict with {', '.join(WORKER_SPEC_KEYS)}, got {spec!r}")
        bad = sorted(set(spec) - set(WORKER_SPEC_KEYS))
        if bad:
            raise ValueError(f"unknown local worker spec key(s) {', '.join(bad)}; valid: {', '.join(WORKER_SPEC_KEYS)}")
        feats = spec.get("features") or {}
        if isinstance(feats, dict):
            feats = [f"{k}={v}" for k, v in feats.items()]
        elif isinstance(feats, str):
            feats = [feats]
        specs.append({"cores": spec.get("cores", 1), "memory": spec.get("memory"), "disk": spec.get("disk"),
                      "gpus": spec.get("gpus"), "features": list(feats)})
    return specs
