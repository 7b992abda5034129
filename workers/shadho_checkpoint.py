"""Checkpoint archives of multi-fidelity trials, on both sides of a task.

A promoted configuration continues from the state its last rung left: the objective
writes what it needs into the checkpoint folder it is given; after the rung this module
packs that folder into one tar archive (refused over the size limit), the manager brings
it back with the task's outputs, and the master ships it to the task that continues the
configuration, where it is unpacked into a fresh folder before the objective runs.

Anything wrong with an archive (missing, half-written, not a tar, over the limit, a
member that would land outside the folder, a link or a device) means "start from
scratch": :func:`unpack` leaves an empty folder and says why, it never raises. Archives
are written to a temporary name and renamed into place, so none is ever half-written
under its own name.

Standalone (standard library only): workers run it without shadho installed.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> src = os.path.join(d, "ck"); os.makedirs(src)
    >>> _ = open(os.path.join(src, "model.bin"), "wb").write(b"w" * 10)
    >>> pack(src, os.path.join(d, "ck.tar"), limit_bytes=1000)
    (True, '')
    >>> unpack(os.path.join(d, "ck.tar"), os.path.join(d, "back"), limit_bytes=1000)
    (True, '')
    >>> open(os.path.join(d, "back", "model.bin"), "rb").read()
    b'wwwwwwwwww'
    >>> unpack(os.path.join(d, "nothing.tar"), os.path.join(d, "fresh"), 1000)
    (False, 'no checkpoint')
"""
from __future__ import annotations

import functools
import inspect
import os
import shutil
import tarfile
import tempfile
from typing import Any, Callable

__all__ = ["pack", "unpack", "check", "folder_bytes", "run_with_checkpoint", "accepts", "bind_accepted",
           "evaluate_rung", "run_command_rung", "CHECKPOINT_SPEC", "DEFAULT_LIMIT_BYTES"]

#: Why :func:`pack` packed nothing when the folder is empty (not a problem to report).
NOTHING_WRITTEN = "the objective wrote no checkpoint"
#: The key of a rung run's results that says why its checkpoint was not kept.
NOT_KEPT = "shadho_checkpoint_not_kept"
#: The sandbox file of a Work Queue shell-command task that names its checkpoint archives.
CHECKPOINT_SPEC = ".shadho-checkpoint.json"

#: A checkpoint larger than this is not kept unless the search allows more (512 MiB).
DEFAULT_LIMIT_BYTES = 512 * 1024 * 1024


def folder_bytes(folder: str) -> int:
    """Bytes of the regular files under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def pack(folder: str, archive: str, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> tuple[bool, str]:
    """Pack ``folder`` into ``archive``; returns (packed, why not). An empty or missing
    folder packs nothing; links are left out (their targets may not exist elsewhere)."""
    if not os.path.isdir(folder) or not any(os.scandir(folder)):
        return False, NOTHING_WRITTEN
    size = folder_bytes(folder)
    if size > limit_bytes:
        return False, f"checkpoint of {size} bytes is over the limit of {limit_bytes} bytes: not kept"
    fd, tmp = tempfile.mkstemp(prefix=".ck-", suffix=".tar", dir=os.path.dirname(os.path.abspath(archive)))
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as tar:
            for root, dirs, files in os.walk(folder):
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
                for f in sorted(files):
                    p = os.path.join(root, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        tar.add(p, arcname=os.path.relpath(p, folder), recursive=False)
        os.replace(tmp, archive)
        return True, ""
    except OSError as exc:
        return False, f"could not pack the checkpoint: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check(archive: str, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> str:
    """Why ``archive`` cannot be used ('' when it can)."""
    if not os.path.isfile(archive):
        return "no checkpoint"
    if os.path.getsize(archive) > limit_bytes + 1024 * 1024:
        return f"checkpoint archive of {os.path.getsize(archive)} bytes is over the limit of {limit_bytes}"
    try:
        with tarfile.open(archive, "r:") as tar:
            total = 0
            for m in tar.getmembers():
                name = os.path.normpath(m.name)
                if not (m.isfile() or m.isdir()):
                    return f"checkpoint member {m.name!r} is not a file or folder"
                if os.path.isabs(name) or name == ".." or name.startswith(".." + os.sep):
                    return f"checkpoint member {m.name!r} would land outside its folder"
                total += m.size
            if total > limit_bytes:
                return f"checkpoint of {total} bytes is over the limit of {limit_bytes} bytes"
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"damaged checkpoint ({type(exc).__name__}: {exc})"
    return ""


def unpack(archive: str | None, folder: str, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> tuple[bool, str]:
    """Unpack ``archive`` into a fresh ``folder``; returns (restored, why not). The folder
    exists afterwards in any case, empty unless restored."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    why = check(archive, limit_bytes) if archive else "no checkpoint"
    if why:
        return False, why
    try:
        with tarfile.open(archive, "r:") as tar:
            # check() allowed only files and folders inside; the data filter (where this
            # Python has it) checks again.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for m in tar.getmembers():
                tar.extract(m, folder, set_attrs=False, **extra)
        return True, ""
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
        return False, f"damaged checkpoint ({type(exc).__name__}: {exc})"


def run_with_checkpoint(archive_in: str | None, archive_out: str | None, folder: str,
                        run: Callable[[str], dict[str, Any]], limit_bytes: int = DEFAULT_LIMIT_BYTES,
                        always_write: bool = False) -> dict[str, Any]:
    """One rung run around its checkpoint folder: unpack ``archive_in`` into a fresh
    ``folder`` (damaged or missing: it stays empty), ``run(folder)`` (a result dict with
    ``status``), pack the folder into ``archive_out`` when the run succeeded; the folder is
    removed afterwards. ``always_write``: leave an empty ``archive_out`` when nothing was
    packed (Work Queue expects every output file; empty means no checkpoint)."""
    unpack(archive_in, folder, limit_bytes)
    try:
        res = run(folder)
        packed = False
        if archive_out and res.get("status") == "success":
            os.makedirs(os.path.dirname(os.path.abspath(archive_out)), exist_ok=True)
            packed, why = pack(folder, archive_out, limit_bytes)  # refused: the next rung restarts
            if not packed and why != NOTHING_WRITTEN and isinstance(res.get("results"), dict):
                res = {**res, "results": {**res["results"], NOT_KEPT: why}}  # the master says why
        if archive_out and always_write and not packed:
            open(archive_out, "wb").close()
        return res
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def accepts(fn: Callable[..., Any], name: str) -> bool | None:
    """Whether ``fn`` takes the keyword ``name`` (None: its signature cannot be read).
    Remembered per function (a simulated search asks twice per rung run, and reading a
    signature cost it 5% of its time); an unhashable callable is read each time."""
    try:
        return _accepts_cached(fn, name)
    except TypeError:
        return _accepts(fn, name)


def _accepts(fn: Callable[..., Any], name: str) -> bool | None:
    try:
        ps = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return any(p.kind == p.VAR_KEYWORD for p in ps) or any(
        p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in ps)


_accepts_cached = functools.lru_cache(maxsize=64)(_accepts)


def bind_accepted(fn: Callable[..., Any], fields: dict[str, Any]) -> Callable[..., Any]:
    """``fn`` with those of ``fields`` it accepts bound as keywords."""
    return functools.partial(fn, **{k: v for k, v in fields.items() if accepts(fn, k) is not False})


def evaluate_rung(evaluate: Callable[..., dict[str, Any]], fn: Callable[..., Any], params: dict[str, Any],
                  budget: dict[str, Any]) -> dict[str, Any]:
    """A Work Queue worker's rung run of a callable: ``evaluate(fn bound to <name>=value and
    checkpoint=folder, params)`` around its archives (``budget``: the task's JSON of it)."""
    def run(folder: str) -> dict[str, Any]:
        return evaluate(bind_accepted(fn, {budget["name"]: budget["value"], "checkpoint": folder}), params)
    return run_with_checkpoint(budget.get("checkpoint_in"), budget.get("checkpoint_out"),
                               os.path.abspath(budget["folder"]), run, int(budget["limit_bytes"]), always_write=True)


def run_command_rung(spec_path: str, call: Callable[[], int], performance: str = "performance.json") -> int:
    """A Work Queue worker's rung run of a shell command: ``call()`` (its exit status)
    around the checkpoint archives the JSON file ``spec_path`` names.

    A checkpoint refused here (over the size limit) is said on stderr and added to the
    command's ``performance`` file under :data:`NOT_KEPT`, so the master names it in the
    rung's results and counts it in the search's end-of-run notice, as for callables."""
    import json
    import sys

    with open(spec_path) as fh:
        spec = json.load(fh)

    def run(folder: str) -> dict[str, Any]:
        rc = call()
        return {"status": "success" if rc == 0 else "error", "rc": rc, "results": {}}
    res = run_with_checkpoint(spec.get("checkpoint_in"), spec.get("checkpoint_out"), os.path.abspath(spec["folder"]),
                              run, int(spec["limit_bytes"]), always_write=True)
    why = res["results"].get(NOT_KEPT)
    if why:
        print(f"shadho: checkpoint not kept ({why}); the next rung of this configuration starts from scratch",
              file=sys.stderr, flush=True)
        _note_not_kept(performance, str(why))
    return int(res["rc"])


def _note_not_kept(performance: str, why: str) -> None:
    """Add ``{NOT_KEPT: why}`` to the JSON object in ``performance`` (left as it is when it
    holds no object: the master then reads it as the command's result anyway)."""
    import json

    try:
        with open(performance) as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict):
            return
        tmp = performance + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({**doc, NOT_KEPT: why}, fh)
        os.replace(tmp, performance)
    except (OSError, ValueError, RecursionError):
        return
