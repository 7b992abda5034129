"""The spec parser: :func:`split` turns a spec tree into disjoint :class:`SearchSpace` objects.

Dicts marked ``exclusive`` pick one child, dicts marked ``optional`` may be left out,
:func:`~shadho.spaces.exhaustive` domains are tried value by value, and plain lists are
choices; every such decision becomes its own search space (see :mod:`shadho.spaces`).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from typing import Any, Mapping

import numpy as np

from shadho.compound import expand
from shadho.domains import Domain, _Choice, _Exhaustive, _plain
from shadho.errors import SpecError
from shadho.search_space import SearchSpace
from shadho.spec_checks import MAX_DEPTH, check_depth, check_flat_names, space_name, tuple_constant
from shadho.spec_checks import fmt_path as _fmt_path

__all__ = ["split", "MAX_SPACES"]

#: Splitting a spec into more spaces than this raises SpecError (a product blew up).
MAX_SPACES = 10_000

_FLAGS = ("exclusive", "optional")
_ABSENT = object()  # an optional dict left out


def _flag(node: Mapping[str, Any], flag: str, path: tuple[str, ...]) -> bool:
    if flag not in node:
        return False
    value = node[flag]
    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{_fmt_path(path)}: '{flag}' must be True or False, got {value!r}")
    return bool(value)


# An alternative: (tokens naming the decisions taken, subtree with domains/constants)
_Alt = tuple[tuple[str, ...], Any]


def _split(node: Any, path: tuple[str, ...]) -> list[_Alt]:
    check_depth(path)
    if isinstance(node, Mapping):
        for key in node:
            if not isinstance(key, str):
                raise SpecError(f"{_fmt_path(path)}: keys must be strings, got {key!r}")
        exclusive = _flag(node, "exclusive", path)
        optional = _flag(node, "optional", path)
        children = [(k, v) for k, v in node.items() if k not in _FLAGS]
        alts: list[_Alt] = []
        if exclusive:
            if not children:
                raise SpecError(f"{_fmt_path(path)}: an exclusive dict needs at least one child")
            for key, child in children:
                for tokens, sub in _split(child, path + (key,)):
                    token = "/".join(path + (key,))
                    alts.append(((token,) + tokens, {} if sub is _ABSENT else {key: sub}))
        else:
            parts = [[(k, a) for a in _split(v, path + (k,))] for k, v in children]
            for combo in itertools.product(*parts):
                tokens = tuple(t for _, (ts, _) in combo for t in ts)
                sub = {k: s for k, (_, s) in combo if s is not _ABSENT}
                alts.append((tokens, sub))
                if len(alts) > MAX_SPACES:
                    raise SpecError(f"{_fmt_path(path)}: splits into more than {MAX_SPACES} search spaces")
        if optional:
            alts.append((("/".join(path) + ":off" if path else "<root>:off",), _ABSENT))
        if len(alts) > MAX_SPACES:
            raise SpecError(f"{_fmt_path(path)}: splits into more than {MAX_SPACES} search spaces")
        return alts
    if isinstance(node, _Exhaustive):
        _checked(node, path)
        return [(("/".join(path) + "=" + (v if isinstance(v, str) else json.dumps(v)),), v)
                for v in node.values]
    if isinstance(node, Domain):
        return [((), _checked(node, path))]
    if isinstance(node, tuple):  # a constant (a list is a choice): see shadho.spec_checks
        return [((), tuple_constant(node, path))]
    if isinstance(node, list):
        return [((), _checked(_Choice(node), path))]
    if node is None or isinstance(node, (str, bool, int, float, np.generic)):
        if isinstance(node, float) and not math.isfinite(node):
            raise SpecError(f"{_fmt_path(path)}: constants must be finite, got {node!r}")
        return [((), _plain(node))]
    raise SpecError(
        f"{_fmt_path(path)}: expected a dict, a domain, a list or a constant "
        f"(number, string, bool, None), got {type(node).__name__}")


def _checked(dom: Domain, path: tuple[str, ...]) -> Domain:
    try:
        dom.check()
    except SpecError as exc:
        raise SpecError(f"{_fmt_path(path)}: {exc}") from None
    return dom


def _collect(sub: Any, path: tuple[str, ...], paths: list, domains: list) -> Any:
    """Replace domains by None in a copy of ``sub``, recording their paths."""
    if isinstance(sub, dict):
        return {k: _collect(v, path + (k,), paths, domains) for k, v in sub.items()}
    if isinstance(sub, Domain):
        if not path:
            raise SpecError("<root>: the spec must be a dict, got a bare domain")
        paths.append(path)
        domains.append(sub)
        return None
    return copy.deepcopy(sub)


def split(spec: Mapping[str, Any]) -> list[SearchSpace]:
    """Split a spec into disjoint search spaces (one per exclusive/optional/exhaustive choice).

    Raises:
        SpecError: the spec is malformed; the message names the path of the bad entry.

    Example:
        >>> from shadho.spaces import exhaustive, uniform
        >>> [s.name for s in split({'C': exhaustive([1, 10]), 'g': uniform(0, 1)})]
        ['C=1', 'C=10']
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"<root>: the spec must be a dict, got {type(spec).__name__}")
    out: list[SearchSpace] = []
    seen: dict[str, int] = {}
    try:
        expanded = expand(spec)  # compound domains as marked dicts
    except RecursionError:
        raise SpecError(f"<root>: the spec is nested deeper than {MAX_DEPTH} levels") from None
    for tokens, sub in _split(expanded, ()):
        paths: list[tuple[str, ...]] = []
        domains: list[Domain] = []
        template = _collect({} if sub is _ABSENT else sub, (), paths, domains)
        name = space_name(tokens)
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        check_flat_names(template, name)
        desc = {"name": name, "template": template,
                "dims": [[list(p), d.describe()] for p, d in zip(paths, domains)]}
        digest = hashlib.sha1(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()
        out.append(SearchSpace(digest[:12], name, tuple(paths), tuple(domains), template))
    return out
