"""Checks that keep a spec's search spaces stable and its results readable (see :mod:`shadho.spaces`).

* **stable ids**: a space's id is a hash of its definition, so it must not depend on the
  process: a ``set`` (whose order follows string hashing, randomised per process) is
  rejected as a choice's values; use a list (``sorted(...)``).
* **readable columns**: exports and ``shadho status`` flatten params into dotted names, so
  keys that flatten to the same name (``{'a.b': 1, 'a': {'b': ...}}``) are rejected.
* **bounded depth**: a spec nested deeper than :data:`MAX_DEPTH` raises SpecError (not
  RecursionError).
* **tuples are constants**: ``'shape': (64, 64)`` is passed to the objective as the list
  ``[64, 64]`` every time; a *list* is a choice of one of its values (as in SHADHO).

Example:
    >>> tuple_constant((64, 64), ('shape',))
    [64, 64]
    >>> check_flat_names({'a.b': 1, 'a': {'b': None}}, 'default')
    Traceback (most recent call last):
    ...
    shadho.errors.SpecError: search space 'default': keys a.b and a -> b both flatten to 'a.b' ...
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from shadho.errors import SpecError

#: The deepest nesting of dicts (and values) a spec may have.
MAX_DEPTH = 100


def fmt_path(path: Sequence[str]) -> str:
    return ".".join(path) if path else "<root>"


def check_depth(path: Sequence[str]) -> None:
    if len(path) > MAX_DEPTH:
        raise SpecError(f"{fmt_path(path[:5])}...: the spec is nested deeper than {MAX_DEPTH} levels")


def check_values(values: Any, what: str, plain: Any) -> list[Any]:
    """A choice's values as a JSON-able list (``plain`` turns numpy values into Python ones).

    Raises:
        SpecError: an unordered collection, values that are not JSON-able, too deep.
    """
    if isinstance(values, (set, frozenset)):
        raise SpecError(f"{what} needs an ordered list of values, got a {type(values).__name__} (its order, "
                        f"and so the search space's id, changes from one process to the next); "
                        f"use a list, e.g. sorted(...)")
    out = list(values)
    try:
        out = plain(out)
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{what} values must be JSON-able, got {values!r:.200} ({exc})") from None
    except RecursionError:
        raise SpecError(f"{what} values are nested deeper than Python can handle") from None
    return out


def tuple_constant(value: tuple[Any, ...], path: Sequence[str]) -> list[Any]:
    """A tuple in a spec: a constant, passed to the objective as a list."""
    def plain(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SpecError(f"{fmt_path(path)}: the constant is nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, (tuple, list)):
            return [plain(x, depth + 1) for x in v]
        if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
            return v.item()
        return v
    out = plain(value, 0)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{fmt_path(path)}: a tuple is a constant and must hold JSON values (numbers, "
                        f"strings, bools, None, tuples), got {value!r:.200} ({exc}); for a choice use a list, for a "
                        f"sequence of domains spaces.sequential([...])")
    return out


def check_flat_names(template: Any, space: str) -> None:
    """Raise SpecError when two leaves of ``template`` flatten to the same dotted name."""
    seen: dict[str, tuple[str, ...]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, path + (k,))
            return
        flat = ".".join(path)
        if flat in seen and seen[flat] != path:
            raise SpecError(f"search space {space!r}: keys {' -> '.join(seen[flat])} and {' -> '.join(path)} "
                            f"both flatten to {flat!r} (the name of a column in exports and status); "
                            f"rename one of them")
        seen[flat] = path
    walk(template, ())


def space_name(tokens: Sequence[str]) -> str:
    """A search space's readable name from the decisions taken (``'svm/rbf'``)."""
    parts: list[str] = []
    prev = ""
    for tok in tokens:
        if prev and tok.startswith(prev + "/"):
            parts.append(tok[len(prev) + 1:])
        else:
            parts.append(tok)
        prev = tok.split("=")[0] if "=" in tok else tok
    return "/".join(parts) or "default"
