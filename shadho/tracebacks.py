"""Put the user's file names and source lines back into tracebacks from shipped objectives.

cloudpickle replaces the file name of every function it pickles by value with
``<dynamic-code>``, so a worker's traceback says ``File "<dynamic-code>", line 4, in obj``.
The master still has the original code objects: :class:`SourceMap` maps each function name to
its file, and :meth:`SourceMap.restore` rewrites the frames and adds the source line.

Example:
    >>> def objective(p):
    ...     return 1 / 0
    >>> m = SourceMap.of(objective)
    >>> text = 'Traceback (most recent call last):\\n  File "<dynamic-code>", line 2, in objective\\n'
    >>> '<dynamic-code>' in m.restore(text)
    False
"""
from __future__ import annotations

import linecache
import re
import types
from typing import Any, Callable

__all__ = ["SourceMap"]

_FRAME = re.compile(r'^(\s*)File "<dynamic-code>", line (\d+), in (\S+)\s*$')


def _codes(code: types.CodeType) -> list[types.CodeType]:
    out = [code]
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out.extend(_codes(c))
    return out


class SourceMap:
    """Function name -> original file, for an objective and the functions of its module it uses."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> "SourceMap":
        files: dict[str, str] = {}
        code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
        if code is None:
            return cls(files)
        pending, seen = [code], set()
        glb = getattr(fn, "__globals__", {}) or {}
        while pending:
            c = pending.pop()
            if id(c) in seen:
                continue
            seen.add(id(c))
            for sub in _codes(c):
                files.setdefault(sub.co_name, sub.co_filename)
                seen.add(id(sub))
                for name in sub.co_names:  # helpers of the same script, pickled by value too
                    g = glb.get(name)
                    if isinstance(g, types.FunctionType) and g.__code__.co_filename == code.co_filename:
                        pending.append(g.__code__)
        return cls(files)

    def restore(self, text: str | None) -> str | None:
        """``text`` with ``<dynamic-code>`` frames given their file and source line."""
        if not text or "<dynamic-code>" not in text or not self.files:
            return text
        lines = text.split("\n")
        out = []
        for i, line in enumerate(lines):
            m = _FRAME.match(line)
            path = self.files.get(m.group(3)) if m else None
            if not m or not path:
                out.append(line)
                continue
            indent, lineno = m.group(1), int(m.group(2))
            out.append(f'{indent}File "{path}", line {lineno}, in {m.group(3)}')
            src = linecache.getline(path, lineno).strip()
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if src and not nxt.startswith(indent + "  "):  # not already followed by its source line
                out.append(f"{indent}  {src}")
        return "\n".join(out)
