"""Compound domains of the original SHADHO (its NAS tutorial uses them): :func:`sequential`,
:func:`repeat`, :func:`dependent`, and :class:`Scope`, the attribute-access dict ``scope()`` returns.

They are written in terms of what :func:`shadho.spaces.split` already understands:
:func:`expand` turns each into nested dicts carrying a small marker, and :func:`restore` turns
the sampled nested params back into what the objective expects (lists, derived values).

Example:
    >>> from shadho import spaces
    >>> lr = spaces.uniform(0, 1)
    >>> spec = {'layers': repeat(spaces.choice([16, 32]), 2), 'lr': lr,
    ...         'half_lr': dependent(lr, lambda v: v / 2)}
    >>> [s.name for s in spaces.split(spec)]
    ['layers/repeat/1', 'layers/repeat/2']
    >>> import numpy as np
    >>> s = spaces.split(spec)[1]
    >>> p = s.params(s.sample(np.random.default_rng(0)))
    >>> len(p['layers']), p['half_lr'] == p['lr'] / 2
    (2, True)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from shadho.domains import Domain

__all__ = ["Scope", "sequential", "repeat", "dependent", "expand", "restore"]

_MARK = "__shadho__"
#: Callbacks of dependent domains, by a key stable across runs (so search-space ids are too).
_CALLBACKS: dict[str, Callable[[Any], Any]] = {}


class Scope(dict):  # type: ignore[type-arg]
    """A spec dict whose children are also attributes (``scope(...).C``), as the original's.

    Example:
        >>> s = Scope(C=1.0)
        >>> s.gamma = 2.0
        >>> s.C, s['gamma']
        (1.0, 2.0)
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"scope has no child {key!r}; children: {', '.join(map(str, self))}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


@dataclass(frozen=True)
class _Sequence:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class _Repeat:
    item: Any
    times: int
    split: bool


@dataclass(frozen=True)
class _Dependent:
    source: Any
    callback: Callable[[Any], Any]


def sequential(domains: Sequence[Any]) -> _Sequence:
    """A list of values sampled independently, one per entry of ``domains`` (domains, dicts,
    lists (choices), constants), in that order."""
    if isinstance(domains, (str, bytes)) or not isinstance(domains, Sequence) or not domains:
        raise TypeError(f"sequential() needs a non-empty list or tuple of domains, got {domains!r}")
    return _Sequence(tuple(domains))


def repeat(domain: Any, repetitions: int, split: bool = True) -> _Repeat:
    """``domain`` repeated: a list of ``repetitions`` independent values. With ``split`` (the
    default) every length 1..repetitions is its own search space, e.g. networks of 1..n layers."""
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repeat() needs repetitions >= 1, got {repetitions!r}")
    return _Repeat(domain, repetitions, bool(split))


def dependent(domain: Any, callback: Callable[[Any], Any] | None = None) -> _Dependent:
    """A value computed from another domain's value in the same trial: ``callback(value)``
    (the value itself without a callback). ``domain`` must be placed elsewhere in the spec."""
    if callback is not None and not callable(callback):
        raise TypeError(f"dependent() callback must be callable, got {callback!r}")
    return _Dependent(domain, callback or (lambda v: v))


def _callback_key(fn: Callable[[Any], Any]) -> str:
    code = getattr(fn, "__code__", None)
    key = f"{getattr(fn, '__qualname__', type(fn).__name__)}:{getattr(code, 'co_firstlineno', 0)}"
    _CALLBACKS[key] = fn
    return key


def _is_compound(node: Any) -> bool:
    return isinstance(node, (_Sequence, _Repeat, _Dependent))


def _has_compound(node: Any) -> bool:
    # Iterative: a spec nested thousands deep must reach the depth check, not recurse here.
    stack = [node]
    while stack:
        n = stack.pop()
        if _is_compound(n):
            return True
        if isinstance(n, Mapping):
            stack.extend(n.values())
    return False


def _paths(node: Any, path: tuple[str, ...], out: dict[int, tuple[str, ...]]) -> None:
    """First path of every domain object (the sources dependent domains refer to)."""
    if isinstance(node, Domain):
        out.setdefault(id(node), path)
    elif isinstance(node, Mapping):
        for k, v in node.items():
            _paths(v, path + (str(k),), out)


def _seq(items: Sequence[Any], path: tuple[str, ...], where: dict[int, tuple[str, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {_MARK: "seq"}
    for i, item in enumerate(items):
        out[str(i)] = _expand(item, path + (str(i),), where)
    return out


def _expand(node: Any, path: tuple[str, ...], where: dict[int, tuple[str, ...]]) -> Any:
    from shadho.errors import SpecError

    if isinstance(node, _Sequence):
        return _seq(node.items, path, where)
    if isinstance(node, _Repeat):
        if not node.split:
            return _seq([node.item] * node.times, path, where)
        alts = {str(n): _seq([node.item] * n, path + ("repeat", str(n)), where) for n in range(1, node.times + 1)}
        return {_MARK: "pick", "repeat": {"exclusive": True, **alts}}
    if isinstance(node, _Dependent):
        src = where.get(id(node.source))
        if src is None:
            raise SpecError(f"{'.'.join(path)}: dependent() refers to a domain that is not in the spec")
        return {_MARK: "dep", "of": json.dumps(list(src)), "fn": _callback_key(node.callback)}
    if isinstance(node, Mapping):
        return {k: _expand(v, path + (str(k),), where) for k, v in node.items()}
    return node


def expand(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` with compound domains written as marked nested dicts (unchanged when it has none)."""
    if not _has_compound(spec):
        return spec
    where: dict[int, tuple[str, ...]] = {}
    _paths(spec, (), where)
    return _expand(spec, (), where)


def _lookup(root: Any, path: Sequence[str]) -> Any:
    from shadho.errors import SpecError

    node = root
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise SpecError(f"dependent(): its source {'.'.join(path)} is not part of this search space")
        node = node[key]
    return node


def _resolve(node: Any, root: Any) -> Any:
    if isinstance(node, dict):
        if node.get(_MARK) == "dep":
            return _CALLBACKS[node["fn"]](restore_values(_lookup(root, json.loads(node["of"]))))
        return {k: _resolve(v, root) for k, v in node.items()}
    return node


def restore_values(node: Any) -> Any:
    """Marked dicts back into lists / picked values (no dependent resolution)."""
    if isinstance(node, dict):
        mark = node.get(_MARK)
        if mark == "seq":
            return [restore_values(node[str(i)]) for i in range(len(node) - 1)]
        if mark == "pick":
            (inner,) = node["repeat"].values()
            return restore_values(inner)
        return {k: restore_values(v) for k, v in node.items()}
    return node


def restore(params: dict[str, Any]) -> dict[str, Any]:
    """Sampled nested params with compound domains as the objective expects them."""
    if not _marked(params):
        return params
    return restore_values(_resolve(params, params))


def _marked(node: Any) -> bool:
    return isinstance(node, dict) and (_MARK in node or any(_marked(v) for v in node.values()))
