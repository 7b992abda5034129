"""What the workers connected to a Work Queue manager can run, per compute class.

Pure functions over Work Queue's statistics and the local workers' specs (no Work Queue
import): :func:`slots` counts how many tasks of each class can run at once (late binding:
the manager hands out only those plus a short queue), and :func:`notices` asks
:mod:`shadho.notices` what to tell the user when workers are missing or no worker fits
a class.

Example:
    >>> fits({'cores': 4, 'memory': 4000}, {'cores': 1, 'memory': 1500})
    2
    >>> fits({'cores': 4}, {'cores': 1, 'gpus': 1})   # a worker without GPUs
    0
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from shadho.compute import ALLOCATED, ComputeClass
from shadho.managers.base import class_keys
from shadho.notices import ClassNeeds, ConnectNotice, Pool, UnmatchedNotice

Classes = Mapping[str | None, ComputeClass | None]
Needs = Mapping[str | None, Mapping[str, float]]


def class_table(classes: Sequence[ComputeClass], default_category: str) -> tuple[
        dict[str | None, ComputeClass | None], dict[str | None, str], dict[str | None, dict[str, float]]]:
    """For each class key (:func:`~shadho.managers.base.class_keys`): its class, its Work Queue
    category and what one of its tasks takes (at least one core: a task without resources
    would take a whole worker).

    Example:
        >>> _, cats, needs = class_table([ComputeClass('big', 'memory', 4000)], 'dflt')
        >>> cats, needs
        ({'big': 'big'}, {'big': {'cores': 1, 'memory': 4000}})
    """
    table, cats, needs = {}, {}, {}
    for key in class_keys(classes):
        cc = next((c for c in classes if c.name == key), None)
        table[key], cats[key] = cc, cc.name if cc is not None else default_category
        sizes = dict(cc.resources) if cc is not None else {}
        needs[key] = sizes if sizes.get("cores") else {"cores": 1, **sizes}
    return table, cats, needs


def fits(res: Mapping[str, Any], need: Mapping[str, float]) -> int:
    """How many tasks needing ``need`` fit in resources ``res`` (unknown sizes: no limit;
    an unknown number of GPUs: none)."""
    n = math.inf
    for k in ALLOCATED:
        want = float(need.get(k) or 0)
        if want <= 0:
            continue
        have = res.get(k)
        if have is None:
            if k == "gpus":
                return 0
            continue
        n = min(n, math.floor(float(have) / want + 1e-9))
    return 0 if n == math.inf else int(max(0, n))


def slots(stats: Any, local: Sequence[Mapping[str, Any]], classes: Classes, needs: Needs) -> dict[str | None, int]:
    """Tasks of each class the connected workers (and ``local`` workers, connected or still
    starting, by spec) can run at once. ``stats``: the queue's ``stats``; ``needs``: what
    one task of each class takes."""
    remote = {"workers": max(0, stats.workers_connected - len(local)),
              "cores": max(0, stats.total_cores - sum(float(w["cores"]) for w in local)),
              "memory": max(0, stats.total_memory - sum(float(w.get("memory") or 0) for w in local)),
              "gpus": max(0, stats.total_gpus - sum(float(w.get("gpus") or 0) for w in local))}
    out = {}
    for key, cc in classes.items():
        feature = cc.feature if cc is not None else None
        n = sum(fits(w, needs[key]) for w in local if not feature or feature in (w.get("features") or ()))
        if remote["workers"]:
            # Remote workers' features are not visible: count their pooled resources.
            n += remote["workers"] if feature else fits(remote, needs[key])
        out[key] = n
    return out


def notices(q: Any, now: float, local: int, classes: Classes, needs: Needs, categories: Mapping[str | None, str],
            connect: ConnectNotice, unmatched: UnmatchedNotice) -> list[str]:
    """What to tell the user now (maybe nothing): how to connect workers, and classes no
    connected worker runs. The first entry is the connection notice (or None)."""
    st = q.stats
    msgs: list[Any] = [connect.tick(now, st.workers_connected, local)]
    wants, waiting, running = {}, {}, {}
    for key, cc in classes.items():
        name = cc.name if cc is not None else "default"
        res = needs[key]
        wants[name] = ClassNeeds(name, cc.feature if cc is not None else None, res.get("cores", 0),
                                 res.get("memory", 0), res.get("gpus", 0))
        cat = q.stats_category(categories[key])
        waiting[name], running[name] = cat.tasks_waiting, cat.tasks_running
    pool = Pool(st.workers_connected, st.max_cores, st.max_memory, st.max_gpus)
    return msgs + list(unmatched.tick(now, wants, waiting, running, pool))
