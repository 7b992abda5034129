"""A small real search shared by the CLI and report tests: three SVM kernels, two compute
classes, a categorical hyperparameter and some failing trials."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from shadho import Shadho, spaces


def objective(params: dict[str, Any]) -> float:
    (kernel, p), = params["svm"].items()
    if kernel == "poly" and p["degree"] == 5:
        raise ValueError("degree 5 is not supported")
    return (p["C"] - 1.0) ** 2 * 0.01 + {"linear": 0.1, "rbf": 0.0, "poly": 0.05}[kernel]


SPEC = {"svm": spaces.scope(
    exclusive=True,
    linear={"kernel": "linear", "C": spaces.log10_uniform(-3, 3)},
    rbf={"kernel": "rbf", "C": spaces.log10_uniform(-3, 3), "gamma": spaces.log10_uniform(-5, 0)},
    poly={"kernel": "poly", "C": spaces.log10_uniform(-3, 3), "degree": spaces.randint(2, 6),
          "coef": spaces.choice(["zero", "one"])})}


def run_search(db: Path, key: str = "t", fn: Callable[[dict[str, Any]], Any] = objective,
               max_tasks: int = 30, classes: bool = True) -> None:
    """Run a real search on the local manager into ``db``."""
    opt = Shadho(key, fn, SPEC, backend=str(db), max_tasks=max_tasks, local_workers=2, quiet=True, seed=0)
    if classes:
        opt.add_compute_class("small", "cores", 1)
        opt.add_compute_class("big", "cores", 2)
    opt.run()
    opt.close()


def rung_search(db: Path) -> None:
    """A multi-fidelity experiment ``mf`` written straight into ``db``: six 1-epoch runs on
    class cpu, their two best promoted to 3 epochs on gpu, one of them running at 9."""
    from shadho.store import ResultsStore, TrialUpdate
    from shadho.trial import TrialState

    with ResultsStore(str(db)) as store:
        exp = store.open_experiment("mf", {"fidelity": {"name": "epochs", "min": 1, "max": 9, "eta": 3}})
        updates, first = [], []
        for i in range(6):
            t = store.add_rung_trial(exp, "s", {"x": i}, [float(i)], "cpu", rung=0, budget=1)
            first.append(t)
            updates.append(TrialUpdate(t, TrialState.COMPLETE, loss=6.0 - i, start_time=100.0 + i,
                                       finish_time=115.0 + i, compute_class="cpu"))
        for c in first[-2:]:
            t = store.add_rung_trial(exp, "s", {"x": 0}, [0.0], "gpu", config=c, rung=1, budget=3)
            updates.append(TrialUpdate(t, TrialState.COMPLETE, loss=0.5, start_time=120.0, finish_time=182.0,
                                       compute_class="gpu"))
        t = store.add_rung_trial(exp, "s", {"x": 0}, [0.0], "gpu", config=first[-1], rung=2, budget=9)
        store.mark_submitted([t], "gpu")
        store.finish_trials(updates)
