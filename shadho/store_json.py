"""A results store kept as a JSON file (``backend='results.json'``).

It is the SQLite store in memory, loaded from the JSON file when it exists and
written back atomically (temp file + rename) every few seconds and on close.
Use a ``.db`` file for long or large searches: it writes every result at once.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

from shadho.errors import StoreError
from shadho.store import SCHEMA_VERSION, ResultsStore


class JsonMirroredStore(ResultsStore):
    """An in-memory :class:`ResultsStore` mirrored to a JSON file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), 'r.json')
        >>> s = JsonMirroredStore(path); exp = s.open_experiment('e'); s.close()
        >>> json.load(open(path))['exp_key']
        'e'
    """

    def __init__(self, path: str, flush_every: float = 5.0) -> None:
        super().__init__(":memory:")
        self.json_path = path
        self.flush_every = flush_every
        self._last_flush = 0.0
        self._doc: dict[str, Any] | None = None
        if os.path.exists(path):
            try:
                with open(path) as fh:
                    doc = json.load(fh)
            except (OSError, ValueError) as exc:
                raise StoreError(f"{path}: not a shadho JSON results file ({exc})") from None
            if not isinstance(doc, dict) or doc.get("format") != "shadho":
                raise StoreError(f"{path}: not a shadho JSON results file")
            if int(doc.get("schema_version", 0)) > SCHEMA_VERSION:
                raise StoreError(f"{path}: written by a newer shadho; upgrade shadho")
            self._doc = doc

    def open_experiment(self, exp_key: str, settings: dict[str, Any] | None = None,
                        lock: bool = True) -> int:
        exp = super().open_experiment(exp_key, settings, lock=False)
        doc = self._doc
        if doc is not None and doc.get("exp_key") == exp_key:
            self._doc = None
            self.restore(exp, doc)
        self._exp_key = exp_key
        self._exp_id = exp
        return exp

    def flush(self) -> None:
        """Write the JSON file now."""
        if getattr(self, "_exp_id", None) is not None:
            self.export_json(self._exp_id, self.json_path)
            self._last_flush = time.time()

    def finish_trials(self, updates: Any) -> int:
        n = super().finish_trials(updates)
        if time.time() - self._last_flush >= self.flush_every:
            self.flush()
        return n

    def close(self) -> None:
        self.flush()
        super().close()
