"""Old argument names kept working, with a DeprecationWarning, after a rename.

Names carry their unit (``memory_mb``, ``time_min``, ``worker_timeout_s``); the names
they replace still work for a while: passing one warns and sets the new field, and
reading one warns and returns the new field's value.

Example:
    >>> import warnings
    >>> from dataclasses import dataclass
    >>> @renamed_fields(wait="wait_s")
    ... @dataclass(frozen=True)
    ... class Job:
    ...     wait_s: int = 5
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     job = Job(wait=30)
    >>> job.wait_s, str(caught[0].message)
    (30, 'Job(wait=) is deprecated: use wait_s= (the unit is in the name)')
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Mapping, TypeVar

__all__ = ["renamed_fields", "renamed_options"]

T = TypeVar("T", bound=type)


def _message(owner: str, old: str, new: str) -> str:
    return f"{owner}({old}=) is deprecated: use {new}= (the unit is in the name)"


def renamed_options(options: dict[str, Any], renames: Mapping[str, str], owner: str,
                    stacklevel: int = 3) -> dict[str, Any]:
    """Move deprecated keys of ``options`` to their new names (in place), warning once per key.

    Raises:
        TypeError: both the old and the new name were given.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     renamed_options({'time': 5}, {'time': 'time_min'}, 'WorkerSpec')
        {'time_min': 5}
    """
    for old, new in renames.items():
        if old not in options:
            continue
        if new in options:
            raise TypeError(f"{owner}: give {new}= or the deprecated {old}=, not both")
        warnings.warn(_message(owner, old, new), DeprecationWarning, stacklevel=stacklevel)
        options[new] = options.pop(old)
    return options


def _alias(owner: str, old: str, new: str) -> property:
    def read(self: Any) -> Any:
        warnings.warn(f"{owner}.{old} is deprecated: read {owner}.{new} (the unit is in the name)",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(read, doc=f"Deprecated alias of :attr:`{new}`.")


def renamed_fields(**renames: str) -> Callable[[T], T]:
    """Class decorator for a dataclass: ``old=new`` keyword and attribute aliases that warn.

    Apply it above ``@dataclass``; :func:`dataclasses.fields` lists the new names only.
    """
    def wrap(cls: T) -> T:
        init = cls.__init__  # type: ignore[misc]
        owner = cls.__name__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **renamed_options(kwargs, renames, owner))

        cls.__init__ = __init__  # type: ignore[misc]
        for old, new in renames.items():
            setattr(cls, old, _alias(owner, old, new))
        return cls

    return wrap
