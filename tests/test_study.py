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


def test_a_spaces_proposals_do_not_depend_on_the_other_spaces(db, tmp_path):
    """Each proposal draws from (seed, space, its index in the space): a space's k-th
    configuration is the same whatever was proposed in other spaces before it."""
    def proposals(order, path):
        opt = Shadho("e", loss, SPEC, backend=path, max_tasks=40, seed=2, quiet=True)
        study = opt.open()
        out: dict[str, list] = {"a": [], "b": []}
        for name in order:
            space = next(s for s in study.spaces if s.name == name)
            ((_, params, _),) = study._new_trials(space, 1, None)
            out[name].append(params)
        opt.close()
        return out

    one = proposals("aaaabbbb", db)
    two = proposals("babababa", str(tmp_path / "other.db"))
    assert one == two
    assert len({p["a"]["x"] for p in one["a"]}) == 4


def test_resumed_search_continues_each_spaces_sequence(db, tmp_path):
    """A resumed search draws each space's next proposal where the stopped one left off
    (the picks' stream restarts, so only the per-space sequences are compared)."""
    def run(path, stops):
        seen: dict[str, list] = {"a": [], "b": []}
        done = 0
        for n in stops:
            opt = Shadho("e", loss, SPEC, backend=path, max_tasks=n, seed=4, quiet=True)
            for _ in range(n - done):
                t = opt.ask()
                opt.tell(t, loss(t.params))
                seen[t.searchspace].append(t.params)
            done = n
            opt.close()
        return seen

    resumed, straight = run(db, [3, 12]), run(str(tmp_path / "straight.db"), [12])
    for name in ("a", "b"):
        n = min(len(resumed[name]), len(straight[name]))
        assert n >= 3 and resumed[name][:n] == straight[name][:n]
