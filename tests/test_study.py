"""The study's public hooks (``Shadho.open()``, ``study.scheduler``, ``study.clock``): what the
simulator uses instead of the driver's private attributes, here with the real local manager."""
from __future__ import annotations

from typing import Any

from shadho import Shadho, spaces
from shadho.managers.local import LocalManager
from shadho.study import Study
from shadho.trial import TrialState

SPEC = {"exclusive": True, "a": {"x": spaces.uniform(0, 1)}, "b": {"y": spaces.uniform(0, 1)}}


def loss(p: dict[str, Any]) -> float:
    (inner,) = p.values()  # {'a': {'x': ...}} or {'b': {'y': ...}}
    (value,) = inner.values()
    return value


class CountingScheduler:
    """Wraps the real scheduler and counts its picks (an injected scheduler)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.picks = inner, 0

    def pick(self, *a: Any) -> str:
        self.picks += 1
        return self.inner.pick(*a)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_injected_scheduler_and_clock_drive_a_real_run(db):
    opt = Shadho("e", loss, SPEC, backend=db, manager=LocalManager(workers=2), max_tasks=12, quiet=True,
                 seed=0, timeout=120, reassign_every=4)
    study = opt.open()
    assert isinstance(study, Study) and opt.open() is study and opt.exp_id == study.exp
    study.clock = lambda: 1234.5
    counting = CountingScheduler(study.scheduler)
    study.scheduler = counting  # type: ignore[assignment]
    trials = opt.run()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 12
    assert counting.picks == 12  # every new trial's space came from the injected scheduler
    stats = opt.store.space_stats(opt.exp_id)
    assert stats and {r["time"] for r in stats} == {1234.5}  # the rows carry the injected clock
    assert opt.study.best_loss == opt.best["loss"]
    opt.close()


def test_study_resumes_from_the_store_alone(db):
    opt = Shadho("e", loss, SPEC, backend=db, max_tasks=6, seed=1, quiet=True)
    for _ in range(4):
        t = opt.ask()
        opt.tell(t, loss(t.params))
    waiting = opt.ask()  # asked, never told: it runs again after a restart
    opt.close()
    study = Shadho("e", loss, SPEC, backend=db, max_tasks=6, seed=1, quiet=True).open()
    assert sum(len(h.y) for h in study.histories.values()) == 4
    assert [r[0] for r in study.requeued] == [waiting.id]
    assert study.budget_left() == 1 and not study.done()
    assert study.best_loss == min(t.loss for t in study.store.trials(study.exp) if t.loss is not None)
    study.store.close()
