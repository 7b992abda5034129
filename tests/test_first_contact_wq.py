"""First contact on Work Queue (issue 11), with real ``work_queue_worker`` processes started by
hand as a cluster user would, a real ``catalog_server`` on a free port, and drivers of our own
that make the same calls as the original SHADHO 0.4.5 examples (sin_distributed, svm).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from shadho import Shadho, spaces
from shadho.store import ResultsStore
from shadho.trial import TrialState

pytestmark = pytest.mark.workqueue

WORKER = shutil.which("work_queue_worker")
CATALOG = shutil.which("catalog_server")


@pytest.fixture(autouse=True)
def _cctools() -> None:
    if not WORKER or not CATALOG:  # fail, never skip: a missing install must be seen
        pytest.fail("cctools (work_queue_worker, catalog_server) is not installed: apt-get install coop-computing-tools")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _wait_for(cond, limit: float = 60.0, step: float = 0.2) -> bool:
    end = time.time() + limit
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


@pytest.fixture
def password(tmp_path: Path) -> str:
    p = tmp_path / "pw"
    p.write_text("first-contact")
    p.chmod(0o600)
    return str(p)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[str]:
    """A private catalog server; ``host:port`` (it picks a free port and writes it to a file)."""
    portfile = tmp_path / "catalog.port"
    proc = subprocess.Popen([CATALOG, "-Z", str(portfile), "-o", str(tmp_path / "catalog.log"),
                             "-H", str(tmp_path / "catalog.history")],  # history not in the cwd
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: portfile.exists() and portfile.read_text().strip().isdigit(), 90)
        yield f"localhost:{portfile.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Workers:
    """Workers started by hand (``work_queue_worker ...``), stopped at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp, self.procs = tmp_path, []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        wdir = self.tmp / f"w{len(self.procs)}"
        wdir.mkdir()
        log = open(self.tmp / f"w{len(self.procs)}.log", "wb")
        p = subprocess.Popen([WORKER, "--workdir", str(wdir), "--cores", "1", *args], stdout=log,
                             stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        log.close()
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.stop()


def _children_named(name: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,comm="], capture_output=True, text=True).stdout
    me = str(os.getpid())
    return [int(p) for p, pp, c in (ln.split(None, 2) for ln in out.splitlines() if ln.strip())
            if pp == me and c.strip() == name]


# ---------------------------------------------------------------- a master never computes unasked


def test_no_local_workers_unless_asked_and_connection_notice_repeats(tmp_path: Path, password: str,
                                                                     capsys) -> None:
    port = _free_port()
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(_children_named("work_queue_work"))  # comm is cut at 15 characters
            time.sleep(0.3)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    opt = Shadho("e", "bash task.sh", {"x": spaces.uniform(0, 1)}, backend=str(tmp_path / "r.db"),
                 manager="workqueue", port=port, password=password, timeout=9, quiet=True,
                 worker_options={"connect_notice_every_s": 2})
    try:
        trials = opt.run()
    finally:
        stop.set()
        t.join()
        opt.close()
    err = capsys.readouterr().err
    assert seen == [] and all(t.worker is None for t in trials)
    host = socket.gethostname()
    assert "no workers connected yet" in err and err.count("still no workers connected") >= 2
    assert f"master: {host}:{port}" in err and f"password file: {password}" in err
    assert f"work_queue_worker --password {password} {host} {port}" in err
    assert f"shadho workers slurm --manager {host}:{port} --password {password} --count 4" in err


# ---------------------------------------------------------------- compute classes


def _square(p):
    return p["x"] ** 2


def test_feature_class_runs_on_worker_started_with_that_feature(tmp_path: Path, password: str,
                                                                workers: Workers) -> None:
    port = _free_port()
    opt = Shadho("e", _square, {"x": spaces.uniform(0, 1)}, backend=str(tmp_path / "r.db"),
                 manager="workqueue", port=port, password=password, max_tasks=3, timeout=90, quiet=True)
    opt.add_compute_class("titan", "feature", "titanx")
    workers.start("--feature", "titanx", "--password", password, "localhost", str(port))
    try:
        trials = opt.run()
    finally:
        opt.close()
    assert len(trials) == 3
    assert all(t.state is TrialState.COMPLETE and t.compute_class == "titan" for t in trials), \
        [(t.state, t.error) for t in trials]


def test_unmatched_and_impossible_classes_are_said(tmp_path: Path, password: str, workers: Workers,
                                                   capsys) -> None:
    port = _free_port()
    opt = Shadho("e", _square, {"x": spaces.uniform(0, 1)}, backend=str(tmp_path / "r.db"),
                 manager="workqueue", port=port, password=password, timeout=20, quiet=True,
                 worker_options={"unmatched_after_s": 3})
    opt.add_compute_class("titan", "feature", "nope")
    opt.add_compute_class("big", "cores", 32)
    workers.start("--password", password, "localhost", str(port))
    try:
        opt.run()
    finally:
        opt.close()
    err = capsys.readouterr().err
    assert "compute class 'big' needs 32 cores but no connected worker can ever run it" in err
    assert "largest with 1 cores" in err
    m = re.search(r"compute class 'titan' has \d+ queued task\(s\) and none has run for \d+ s: "
                  r"it requires feature 'nope'.*start workers with --feature nope", err)
    assert m, err[-3000:]


def test_failing_objective_traceback_names_user_file_on_workers(tmp_path: Path, capsys) -> None:
    def broken(p):
        raise ValueError("broken objective")

    opt = Shadho("e", broken, {"x": spaces.uniform(0, 1)}, backend=str(tmp_path / "r.db"),
                 manager="workqueue", local_workers=1, max_tasks=2, timeout=90, quiet=True)
    try:
        trials = opt.run()
    finally:
        opt.close()
    assert all(t.state is TrialState.FAILED for t in trials)
    assert all(f'File "{__file__}", line' in t.error and "<dynamic-code>" not in t.error for t in trials)
    err = capsys.readouterr().err
    assert "most common error (2 trial(s)): ValueError: broken objective" in err
    assert 'raise ValueError("broken objective")' in err


# ---------------------------------------------------------------- the original examples


_SIN_DRIVER = '''
import math
from shadho import Shadho, spaces

if __name__ == "__main__":
    # sin(x) on [0, pi], evaluated by a shell command on Work Queue workers found by name.
    opt = Shadho("sin_distributed_example", "bash ./sin_task.sh", {{"x": spaces.uniform(0, math.pi)}},
                 timeout={timeout})
    opt.add_input_file("sin_task.sh")
    opt.add_input_file("sin.py")
    opt.config.workqueue.name = "{name}"
    opt.run()
'''

_SIN_OBJECTIVE = '''
import math
import shadho_worker  # shipped into every task's sandbox


def sin(params):
    return math.sin(params["x"])


if __name__ == "__main__":
    shadho_worker.run(sin)
'''

_SVM_DRIVER = '''
from shadho import Shadho, spaces

if __name__ == "__main__":
    C = spaces.log2_uniform(-5, 15)
    gamma = spaces.log10_uniform(-3, 3)
    coef0 = spaces.uniform(-1000, 1000)
    kernels = {{
        "exclusive": True,
        "linear": {{"kernel": "linear", "C": C}},
        "rbf": {{"kernel": "rbf", "C": C, "gamma": gamma}},
        "sigmoid": {{"kernel": "sigmoid", "C": C, "gamma": gamma, "coef0": coef0}},
        "poly": {{"kernel": "poly", "C": C, "gamma": gamma, "coef0": coef0, "degree": spaces.randint(2, 15)}},
    }}
    opt = Shadho("shadho_svm_example", "bash svm_task.sh", kernels, timeout={timeout})
    opt.config.workqueue.name = "{name}"
    for f in ("svm_task.sh", "svm.py", "mnist.npz"):
        opt.add_input_file(f)
    opt.add_compute_class("1-core", "cores", 1, max_tasks=20)
    opt.run()
'''

_SVM_OBJECTIVE = '''
import sys
import time

import numpy as np
import shadho_worker
from sklearn.metrics import accuracy_score, log_loss
from sklearn.preprocessing import LabelBinarizer
from sklearn.svm import SVC


def load():
    with np.load("mnist.npz") as d:  # images as (n, height, width), labels as (n,)
        xs = [d[k].reshape(len(d[k]), -1).astype(np.float32) / 16.0 for k in ("x_train", "x_test")]
        return xs[0], d["y_train"], xs[1], d["y_test"]


def train(params):
    (kernel, hp), = params.items()  # one kernel's sub-space: {"rbf": {"kernel": "rbf", "C": ...}}
    x_train, y_train, x_test, y_test = load()
    svc = SVC(kernel=hp["kernel"], C=hp["C"], gamma=hp.get("gamma", "auto"), coef0=hp.get("coef0", 0.0),
              degree=hp.get("degree", 3), max_iter=3000)
    t0 = time.time()
    svc.fit(x_train, y_train)
    pred = svc.predict(x_test)
    onehot = LabelBinarizer().fit(np.unique(y_test))
    return {"loss": log_loss(y_test, onehot.transform(pred), labels=onehot.classes_),
            "accuracy": accuracy_score(y_test, pred), "train_time": time.time() - t0, "kernel": kernel,
            "tag": sys.argv[-1]}  # the task tag, the command's last argument


if __name__ == "__main__":
    shadho_worker.run(train)
'''


def _write_digits(path: Path) -> None:
    """sklearn's digits in the layout the original svm.py reads (x_/y_ train/test, images 2-D)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(d.target))
    tr, te = idx[:600], idx[600:900]
    np.savez(path, x_train=d.images[tr], y_train=d.target[tr], x_test=d.images[te], y_test=d.target[te])


def _run_named_example(tmp_path: Path, catalog: str, workers: Workers, name: str, files: dict[str, str],
                       limit: float) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``driver.py`` unchanged; start a worker by name with the password file it prints."""
    for fname, text in files.items():
        (tmp_path / fname).write_text(textwrap.dedent(text))
    env = {**os.environ, "CATALOG_HOST": catalog}
    errlog = tmp_path / "driver.err"
    with open(errlog, "w") as fh:
        proc = subprocess.Popen([sys.executable, "driver.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=fh, text=True)
    pw_re = re.compile(r"password file: (\S+)")
    assert _wait_for(lambda: pw_re.search(errlog.read_text()), 60), errlog.read_text()
    text = errlog.read_text()
    assert f"work_queue_worker -M {name} --catalog {catalog} --password" in text, text
    pw = pw_re.search(text).group(1)
    workers.start("-M", name, "--password", pw, "-t", "60", env={"CATALOG_HOST": catalog})
    out, _ = proc.communicate(timeout=limit)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, errlog.read_text()), name


def test_sin_distributed_example_master_by_name_worker_by_hand(tmp_path: Path, catalog: str,
                                                               workers: Workers) -> None:
    name = f"shadho_sin_ex_{os.getpid()}"
    files = {"driver.py": _SIN_DRIVER.format(timeout=20, name=name), "sin.py": _SIN_OBJECTIVE,
             "sin_task.sh": "#!/usr/bin/env bash\n# set up the worker's environment here, then:\npython sin.py\n"}
    r, _ = _run_named_example(tmp_path, catalog, workers, name, files, limit=120)
    assert r.returncode == 0, r.stderr[-3000:]
    with ResultsStore(tmp_path / "results.db", readonly=True) as s:
        trials = s.trials(s.experiment_id("sin_distributed_example"))
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(done) >= 3, [(t.state, t.error) for t in trials]
    for t in done:
        assert abs(t.loss - np.sin(t.params["x"])) < 1e-9
    assert "best loss" in r.stderr and "sin_distributed_example:" in r.stderr
    assert re.search(r"driver\.py:\d+: DeprecationWarning: opt\.config\.workqueue\.name is deprecated", r.stderr)


def test_svm_example_runs_unchanged_on_digits(tmp_path: Path, catalog: str, workers: Workers) -> None:
    _write_digits(tmp_path / "mnist.npz")
    name = f"shadho_svm_ex_{os.getpid()}"
    files = {"driver.py": _SVM_DRIVER.format(timeout=30, name=name), "svm.py": _SVM_OBJECTIVE,
             "svm_task.sh": "#!/usr/bin/env bash\n# $1 is the task tag shadho appends\npython svm.py \"$@\"\n"}
    r, _ = _run_named_example(tmp_path, catalog, workers, name, files, limit=150)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "add_compute_class(max_tasks=) is deprecated" in r.stderr
    with ResultsStore(tmp_path / "results.db", readonly=True) as s:
        trials = s.trials(s.experiment_id("shadho_svm_example"))
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(done) >= 3, [(t.state, t.error) for t in trials]
    for t in done:
        (kernel, hp), = t.params.items()
        assert hp["kernel"] == kernel == t.results["kernel"] and t.searchspace == kernel
        assert 0 <= t.results["accuracy"] <= 1 and t.compute_class == "1-core"
        assert t.results["tag"] == f"{t.id}.{t.space_id}.1-core"
