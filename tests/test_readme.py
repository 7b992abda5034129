"""The README's examples say what the code does."""
from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _block_after(heading: str) -> str:
    section = README[README.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_compute_class_example_matches_its_local_workers():
    from shadho import Shadho, spaces

    code = _block_after("### Compute classes")
    env = {"Shadho": Shadho, "objective": lambda p: 0.0, "spec": {"x": spaces.uniform(0, 1)}}
    exec(code, env)  # constructing a Shadho starts nothing
    opt = env["opt"]
    features = [w["features"] for w in opt.local_workers]
    for cc, feat, worker in zip(opt.compute_classes, features, opt.local_workers):
        assert feat.get(cc.resource) == cc.value, (cc, feat)  # each class matches one worker
        assert cc.resources.get("cores", worker["cores"]) == worker["cores"]
    assert len(opt.compute_classes) == len(opt.local_workers) == 2


def test_readme_says_trials_are_objects_and_uses_root_safe_chromium():
    assert "as a `Trial` object: read its attributes" in README
    for line in README.splitlines():
        if "chromium --headless" in line:
            assert "--no-sandbox" in line, line
