"""group_failures: failed trials grouped by cause."""
from __future__ import annotations

from shadho.failures import FailureGroup, failure_cause, group_failures
from shadho.trial import Trial, TrialState


def _trial(i: int, state: TrialState, error: str | None = None) -> Trial:
    return Trial(id=i, searchspace="s", space_id="x", state=state, params={}, error=error)


def _tb(exc_line: str, path: str = "/home/u/obj.py") -> str:
    return ("Traceback (most recent call last):\n"
            f'  File "{path}", line 12, in objective\n'
            "    raise ValueError(p)\n"
            "    ^^^^^^^^^^^^^^^^^^^\n"
            f"{exc_line}\n")


def test_groups_by_cause_most_common_first() -> None:
    trials = [
        _trial(1, TrialState.FAILED, "command exited with status 1"),
        _trial(2, TrialState.FAILED, _tb("ValueError: C=0.5 is too small")),
        _trial(3, TrialState.COMPLETE),
        _trial(4, TrialState.FAILED, _tb("ValueError: C=0.0625 is too small")),
        _trial(5, TrialState.FAILED, _tb("ValueError: C=1e-3 is too small")),
        _trial(6, TrialState.RUNNING),
        _trial(7, TrialState.FAILED, None),
    ]
    groups = group_failures(trials)
    assert [(g.message, g.count, g.example_trial_id) for g in groups] == [
        ("ValueError: C=<num> is too small", 3, 2),
        ("command exited with status 1", 1, 1),
        ("unknown error", 1, 7),
    ]
    assert isinstance(groups[0], FailureGroup)
    assert '/home/u/obj.py", line 12' in groups[0].example_traceback


def test_cause_masks_addresses_and_temp_paths_and_is_one_short_line() -> None:
    a = failure_cause("could not open /tmp/wq-123/t1/in.json at 0x7f00ab")
    b = failure_cause("could not open /tmp/wq-456/t9/in.json at 0x7f11cd")
    assert a == b == "could not open <tmpdir> at 0x<addr>"
    assert len(failure_cause("x" * 5000)) == 200
    assert "\n" not in failure_cause(_tb("KeyError: 'a'\nmore"))


def test_no_failures_gives_no_groups() -> None:
    assert group_failures([_trial(1, TrialState.COMPLETE)]) == []


def test_docstring_examples() -> None:
    import doctest

    import shadho.failures
    assert doctest.testmod(shadho.failures).failed == 0
