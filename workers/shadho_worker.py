"""The worker side of shadho: standard library + cloudpickle only.

Two uses:

* A user's script run by a shell-command objective calls :func:`run`, which reads
  ``hyperparameters.json`` from the sandbox, calls ``fn(params)`` and writes
  ``performance.json``::

      import shadho_worker

      def objective(params):
          return {'loss': train(**params)}

      if __name__ == '__main__':
          shadho_worker.run(objective)

* The master's execution managers call :func:`evaluate` to run an objective and
  turn whatever it returned (or raised) into a JSON-able result dict.

Results are always JSON; nothing pickled ever travels back to the master.
"""
# One file on purpose, although it is over the ~400-line guide: it is shipped as is with every
# Work Queue task and imported by users' scripts on machines where shadho is not installed,
# so it cannot import siblings.
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable

# traceback is imported where used: every Work Queue task starts a fresh
# interpreter that runs this module, and those imports are most of its start-up cost.

#: Results larger than this (bytes of JSON) are refused.
MAX_RESULT_BYTES = 1 << 20


class ResultError(ValueError):
    """The objective returned something that is not a loss."""


def normalize_result(value: Any) -> tuple[float, dict[str, Any]]:
    """Turn an objective's return value into ``(loss, metrics)``.

    Accepts a finite number or a dict with a finite numeric ``'loss'`` and
    JSON-able other entries.

    Raises:
        ResultError: NaN/inf, None, a string, a dict without 'loss', non-JSON metrics.
    """
    if isinstance(value, dict):
        if "loss" not in value:
            raise ResultError(f"objective returned a dict without 'loss' (keys: {sorted(map(str, value))})")
        loss = _as_loss(value["loss"])
        metrics = {str(k): _plain(v) for k, v in value.items() if k != "loss"}
        try:
            text = json.dumps(metrics, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ResultError(f"objective returned metrics that are not JSON-able: {exc}") from None
        if len(text) > MAX_RESULT_BYTES:
            raise ResultError(f"objective returned {len(text)} bytes of metrics (limit {MAX_RESULT_BYTES})")
        return loss, metrics
    return _as_loss(value), {}


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> Python values (without importing numpy)."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_loss(value: Any) -> float:
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise ResultError(f"objective must return a number or a dict with 'loss', got {value!r:.200}")
    try:
        loss = float(_plain(value))
    except (TypeError, ValueError, OverflowError):
        raise ResultError(f"objective must return a number or a dict with 'loss', got {value!r:.200}") from None
    if not math.isfinite(loss):
        raise ResultError(f"objective returned a non-finite loss ({loss})")
    return loss


def evaluate(fn: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> dict[str, Any]:
    """Run ``fn(params)`` and return a JSON-able result dict.

    Returns ``{'status': 'success', 'loss', 'results', 'start', 'finish'}`` or
    ``{'status': 'error', 'error': traceback text, 'start', 'finish'}``.
    Exceptions (including ``SystemExit``) become errors; the caller survives.
    """
    start = time.time()
    try:
        loss, metrics = normalize_result(fn(params))
        return {"status": "success", "loss": loss, "results": metrics, "start": start,
                "finish": time.time()}
    except ResultError as exc:
        return {"status": "error", "error": f"bad result: {exc}", "start": start, "finish": time.time()}
    except SystemExit as exc:
        return {"status": "error", "error": f"objective called sys.exit({exc.code!r})", "start": start,
                "finish": time.time()}
    except BaseException:  # noqa: BLE001 - any failure of user code is a FAILED trial
        import traceback

        return {"status": "error", "error": traceback.format_exc(limit=20)[-8000:], "start": start,
                "finish": time.time()}


def write_json_atomic(path: str, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` via a temp file + rename (never half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    # Like tempfile.mkstemp (mode 0600, O_EXCL), without importing tempfile.
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(fn: Callable[[dict[str, Any]], Any], params_file: str = "hyperparameters.json",
        result_file: str = "performance.json") -> None:
    """The original SHADHO worker protocol: params from ``hyperparameters.json``,
    ``fn(params)``'s loss (or dict with ``'loss'``) to ``performance.json``.

    An objective that fails still writes its error to the result file, and the
    process exits non-zero so the master records a FAILED trial with the cause.
    """
    # By absolute path: an objective may change the cwd, the result must still land in the sandbox.
    params_file, result_file = in_sandbox(params_file), in_sandbox(result_file)
    with open(params_file) as fh:
        params = json.load(fh)
    become_subreaper()
    try:
        out = evaluate(fn, params)
    finally:
        end_descendants()
    if out["status"] == "success":
        write_json_atomic(result_file, {"loss": out["loss"], **out["results"]})
    else:
        write_json_atomic(result_file, {"error": out["error"]})
        sys.stderr.write(out["error"] + "\n")
        sys.exit(1)


def in_sandbox(name: str) -> str:
    """``name`` as an absolute path in the task's sandbox (``SHADHO_SANDBOX``, which both managers
    set; else the current folder, taken before any objective runs)."""
    base = os.environ.get("SHADHO_SANDBOX") or os.getcwd()
    return os.path.join(base, name)


# ---------------------------------------------------------------- the task's own processes
#
# An objective may start processes (data loaders, servers, ``setsid`` daemons). They must not
# outlive its task: the entry makes itself a child subreaper, so orphaned descendants (even those
# that left the process group) re-parent to it, and ends them all when the trials are done.
# Not caught: descendants of a process that is itself SIGKILLed first (they re-parent to init),
# and processes started through another service (ssh, at, a container runtime).


def become_subreaper() -> None:
    """Make this process the child subreaper of its descendants (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _descendants(root: int) -> list[int]:
    """Live descendants of ``root``, from a scan of /proc (zombies count as gone)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            with open(f"/proc/{d}/stat") as fh:
                state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parent[int(d)] = int(ppid)
        except (OSError, ValueError):
            pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        kids = [c for c, pp in parent.items() if pp == pid]
        found.extend(kids)
        todo.extend(kids)
    return found


def end_descendants(limit: float = 5.0) -> int:
    """SIGKILL every live descendant of this process and reap them; returns how many were ended."""
    import signal

    ended: set[int] = set()
    deadline = time.time() + limit
    while time.time() < deadline:
        kids = _descendants(os.getpid())
        if not kids:
            break
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
                ended.add(k)
            except OSError:
                pass
        time.sleep(0.01)
        _reap()
    _reap()
    return len(ended)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def read_performance(path: str, max_bytes: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """Read a ``performance.json`` written by a user's script into a result dict.

    Never raises: a missing, huge, or malformed file becomes an error result.
    """
    try:
        size = os.path.getsize(path)
    except OSError:
        return {"status": "error", "error": f"the objective wrote no result file ({os.path.basename(path)})"}
    if size > max_bytes:
        return {"status": "error", "error": f"result file is {size} bytes (limit {max_bytes})"}
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        return {"status": "error", "error": f"malformed result file {os.path.basename(path)}: "
                                            f"{type(exc).__name__}: {str(exc)[:200]}"}
    if isinstance(doc, dict) and "error" in doc and "loss" not in doc:
        return {"status": "error", "error": str(doc["error"])[:20000]}
    try:
        loss, metrics = normalize_result(doc)
    except ResultError as exc:
        return {"status": "error", "error": f"bad result file: {exc}"}
    return {"status": "success", "loss": loss, "results": metrics}


# ---------------------------------------------------------------- Work Queue task entry
#
# ``python shadho_worker.py OBJECTIVE PARAMS RESULT`` evaluates one or more trials of a
# pickled callable. OBJECTIVE starts with one header line of JSON (the master's Python
# and cloudpickle versions), then the cloudpickle bytes. PARAMS is JSON:
# ``{"trials": [[id, params], ...], "timeout": s|null, "memory_mb": n|null}``.
# RESULT is rewritten atomically after every trial:
# ``{"host", "slurm", "python", "cloudpickle", "trials": {id: evaluate() result}}``, or
# the same with ``"error"`` instead of ``"trials"`` when the objective cannot be loaded.

#: First bytes of an objective file written by the master.
OBJECTIVE_MAGIC = b"SHADHO-OBJECTIVE 1 "


def _versions() -> dict[str, Any]:
    try:
        import cloudpickle
        cp = getattr(cloudpickle, "__version__", "unknown")
    except ImportError:
        cp = None
    return {"python": "%d.%d.%d" % sys.version_info[:3], "cloudpickle": cp}


def _version_problem(master: dict[str, Any], here: dict[str, Any]) -> str | None:
    """Why a pickle made by ``master`` cannot load here, or None."""
    both = _both(master, here)
    if here["cloudpickle"] is None:
        return (f"cloudpickle is not installed for the worker's Python (missing module 'cloudpickle'); "
                f"{both}. Install cloudpickle=={master.get('cloudpickle')} there or set worker_python=")
    mp = str(master.get("python", "")).split(".")[:2]
    if mp != here["python"].split(".")[:2]:
        return f"Python version mismatch (pickled functions need the same major.minor); {both}"
    mc = str(master.get("cloudpickle", "")).split(".")[:1]
    if mc != str(here["cloudpickle"]).split(".")[:1]:
        return (f"cloudpickle version mismatch; {both}. Install cloudpickle=={master.get('cloudpickle')} "
                f"there or set worker_python=")
    return None


def _both(master: dict[str, Any], here: dict[str, Any]) -> str:
    cp = here["cloudpickle"] or "not installed"
    return (f"master: Python {master.get('python')}, cloudpickle {master.get('cloudpickle')}; "
            f"worker ({sys.executable}): Python {here['python']}, cloudpickle {cp}")


def load_objective(path: str) -> Callable[[dict[str, Any]], Any]:
    """Load a master-written objective file, checking versions before unpickling.

    Raises:
        ResultError: with a message naming both sides' versions (and a missing module).
    """
    here = _versions()
    with open(path, "rb") as fh:
        header = fh.readline()
        data = fh.read()
    if not header.startswith(OBJECTIVE_MAGIC):
        raise ResultError(f"{os.path.basename(path)} is not a shadho objective file")
    master = json.loads(header[len(OBJECTIVE_MAGIC):])
    problem = _version_problem(master, here)
    if problem:
        raise ResultError(problem)
    import pickle

    import cloudpickle  # noqa: F401 - functions pickled by value need it at load time

    both = _both(master, here)
    try:
        return pickle.loads(data)
    except ImportError as exc:
        raise ResultError(f"could not load the objective on the worker: missing module "
                          f"{getattr(exc, 'name', None) or exc} ({exc}); {both}. Install it on the "
                          f"workers or ship it with add_input_file") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported, not raised
        raise ResultError(f"could not load the objective on the worker: {type(exc).__name__}: "
                          f"{exc}; {both}") from None


class _TrialTimeout(BaseException):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _TrialTimeout()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of a Work Queue task: ``shadho_worker.py OBJECTIVE PARAMS RESULT``."""
    import signal

    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--command":
        return run_command(args[1])
    if len(args) != 3:
        sys.stderr.write("usage: shadho_worker.py OBJECTIVE PARAMS RESULT | --command SCRIPT\n")
        return 2
    # Absolute paths, taken before the objective runs: it may change the cwd.
    obj_path, params_path, result_path = (os.path.abspath(a) for a in args)
    become_subreaper()
    doc: dict[str, Any] = {"host": os.uname().nodename, "slurm": os.environ.get("SLURM_JOB_ID"),
                           **_versions()}
    try:
        with open(params_path) as fh:
            job = json.load(fh)
        fn = load_objective(obj_path)
    except ResultError as exc:
        write_json_atomic(result_path, {**doc, "error": str(exc)})
        return 0
    except (OSError, ValueError) as exc:
        write_json_atomic(result_path, {**doc, "error": f"could not read the task's inputs: {exc}"})
        return 0
    if job.get("memory_mb"):
        import resource

        limit = int(float(job["memory_mb"]) * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    timeout = job.get("timeout")
    if timeout:
        signal.signal(signal.SIGALRM, _on_alarm)
    try:
        _run_trials(fn, job, timeout, doc, result_path)
    finally:
        end_descendants()
    return 0


def run_command(script: str) -> int:
    """Run a shell-command objective (``sh SCRIPT``) and end every process it leaves behind
    (around its checkpoint folder in a multi-fidelity search: see :mod:`shadho_checkpoint`)."""
    import subprocess

    become_subreaper()
    try:
        if os.path.exists(".shadho-checkpoint.json"):
            import shadho_checkpoint as ck
            return ck.run_command_rung(".shadho-checkpoint.json", lambda: subprocess.call(["/bin/sh", script]))
        return subprocess.call(["/bin/sh", script])
    finally:
        end_descendants()


def _run_trials(fn: Callable[[dict[str, Any]], Any], job: dict[str, Any], timeout: float | None,
                doc: dict[str, Any], result_path: str) -> None:
    import signal

    results: dict[str, Any] = {}
    budgets = job.get("budgets") or []  # a multi-fidelity search: one per trial
    for i, (trial_id, params) in enumerate(job["trials"]):
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        try:
            if i < len(budgets):
                import shadho_checkpoint as ck
                res = ck.evaluate_rung(evaluate, fn, params, budgets[i])
            else:
                res = evaluate(fn, params)
        except _TrialTimeout:  # fired between evaluate's try and return
            res = {"status": "error"}
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if res["status"] == "error" and (res.get("error") is None or "_TrialTimeout" in res["error"]):
            res = {**res, "error": f"trial exceeded task_timeout={timeout:g} s and was interrupted"}
        results[str(trial_id)] = res
        write_json_atomic(result_path, {**doc, "trials": results})


if __name__ == "__main__":
    sys.exit(main())
