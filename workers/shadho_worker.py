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
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

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
    except (TypeError, ValueError):
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
        return {"status": "error", "error": traceback.format_exc(limit=20)[-8000:], "start": start,
                "finish": time.time()}


def write_json_atomic(path: str, doc: Any) -> None:
    """Write ``doc`` as JSON to ``path`` via a temp file + rename (never half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
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
    with open(params_file) as fh:
        params = json.load(fh)
    out = evaluate(fn, params)
    if out["status"] == "success":
        write_json_atomic(result_file, {"loss": out["loss"], **out["results"]})
    else:
        write_json_atomic(result_file, {"error": out["error"]})
        sys.stderr.write(out["error"] + "\n")
        sys.exit(1)


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
    except (OSError, ValueError) as exc:
        return {"status": "error", "error": f"malformed result file {os.path.basename(path)}: {exc}"}
    if isinstance(doc, dict) and "error" in doc and "loss" not in doc:
        return {"status": "error", "error": str(doc["error"])[:20000]}
    try:
        loss, metrics = normalize_result(doc)
    except ResultError as exc:
        return {"status": "error", "error": f"bad result file: {exc}"}
    return {"status": "success", "loss": loss, "results": metrics}
