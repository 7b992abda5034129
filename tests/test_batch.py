"""Batch systems without a scheduler: golden job files, state tables, time parsing, option
checks, the HTCondor submit path against stub commands, and a local-process pool.

Golden files live in tests/golden/. A changed rendering fails with a diff; to accept the new
rendering, run ``SHADHO_REGEN_GOLDEN=1 pytest tests/test_batch.py`` and review ``git diff``.

Markers: ``workqueue`` on the local-pool test that runs real Work Queue workers.
"""
from __future__ import annotations

import difflib
import os
import stat
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from shadho.batch import SYSTEMS, get_system
from shadho.batch.base import BatchSystem, JobState, WorkerSpec, format_hms, parse_time
from shadho.batch.cli import main as cli_main
from shadho.batch.htcondor import HTCondorSystem
from shadho.batch.local import LocalSystem
from shadho.batch.pool import WorkerPool
from shadho.batch.slurm import SlurmSystem
from shadho.errors import BackendUnavailableError, ShadhoError, WorkerError
from pools import stop_pool

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
LAUNCHER = ROOT / "workers" / "shadho_launch_worker.py"
EXAMPLES = ROOT / "batch" / "examples"

# Fixed paths so the renderings do not depend on this machine.
FIXED = dict(python="/opt/shadho/venv/bin/python", launcher="/opt/shadho/shadho_launch_worker.py",
             log_dir="/scratch/alice/shadho-logs")
FULL = WorkerSpec(manager="login1.example.org:9123", cores=8, memory_mb=16000, disk_mb=20000, gpus=2,
                  features=("site=nd crc", "arch=x86_64"), time_min=parse_time("2h"),
                  password="/home/alice/.shadho/password", partition="gpu", account="proj42",
                  extra="--qos=high", worker_timeout_s=600, **FIXED)
MINIMAL = WorkerSpec(name="my-search", catalog="login1.example.org:9097", **FIXED)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SHADHO_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}; run with SHADHO_REGEN_GOLDEN=1 to create it"
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"golden/{name}", "rendered"))
        pytest.fail(f"rendering differs from golden/{name} (SHADHO_REGEN_GOLDEN=1 to accept):\n{diff}")


# -- golden files ---------------------------------------------------------------------------

@pytest.mark.parametrize("system, spec, name", [
    (SlurmSystem(), FULL, "slurm_full.sbatch"),
    (SlurmSystem(), MINIMAL, "slurm_minimal.sbatch"),
    (HTCondorSystem(), FULL, "htcondor_full.submit"),
    (HTCondorSystem(), MINIMAL, "htcondor_minimal.submit"),
    (LocalSystem(), FULL, "local_full.sh"),
])
def test_golden_rendering(system: BatchSystem, spec: WorkerSpec, name: str) -> None:
    check_golden(name, system.render(spec))


def test_slurm_script_is_valid_bash(tmp_path: Path) -> None:
    for text in (SlurmSystem().render(FULL), (EXAMPLES / "shadho_workers.sbatch").read_text()):
        script = tmp_path / "s.sh"
        script.write_text(text)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


# -- HTCondor: validated with the bindings, submitted to a stub ------------------------------

def _htcondor():
    # htcondor 24.0.x: `import htcondor` + Submit(text) parses offline; 25.x dropped
    # `import htcondor` (only htcondor2), hence the pin htcondor==24.0.* in the test extra.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no condor_config": expected, there is no pool here
        return pytest.importorskip("htcondor")


@pytest.mark.parametrize("text_of", [
    lambda: HTCondorSystem().render(FULL),
    lambda: HTCondorSystem().render(MINIMAL),
    lambda: (EXAMPLES / "shadho_workers.submit").read_text(),
], ids=["full", "minimal", "example"])
def test_htcondor_submit_description_parses(text_of) -> None:
    htcondor = _htcondor()
    sub = htcondor.Submit(text_of())
    jobs = list(sub.jobs(clusterid=7))
    assert jobs, "the description queues no job"
    ad = jobs[0]
    assert ad["Cmd"].endswith("shadho_launch_worker.py")
    assert "--manager" in ad["Arguments"] or "--name" in ad["Arguments"]
    assert "SHADHO_BATCH_JOB=7.0" in ad["Environment"]


def test_htcondor_full_requests() -> None:
    htcondor = _htcondor()
    ad = next(iter(htcondor.Submit(HTCondorSystem().render(FULL)).jobs(clusterid=1)))
    assert ad["RequestCpus"] == 8 and ad["RequestGPUs"] == 2
    assert "--password password" in ad["Arguments"]  # the transferred file, by its base name
    assert "site=nd-crc" in ad["Arguments"]


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def condor_stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stub condor_submit/condor_q/condor_history/condor_rm on PATH.

    No HTCondor pool can run here: there is no Debian package and the PyPI wheels hold only the
    Python bindings, no daemons. So the submit path runs against these stubs, which record
    their argv and input and answer like the real commands.
    """
    bindir = tmp_path / "condorbin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    _write_exe(bindir / "condor_submit", f"""#!/bin/sh
echo "condor_submit $*" >> {calls}
cat "$1" > {tmp_path}/submitted.sub
echo "Submitting job(s)."
echo "1 job(s) submitted to cluster 4242."
""")
    _write_exe(bindir / "condor_q", f"""#!/bin/sh
echo "condor_q $*" >> {calls}
echo "4242 0 2 undefined"
""")
    _write_exe(bindir / "condor_history", f"""#!/bin/sh
echo "condor_history $*" >> {calls}
echo "4243 0 3 The job attribute PeriodicRemove expression 'x' evaluated to TRUE"
echo "4244 0 4 undefined"
""")
    _write_exe(bindir / "condor_rm", f"""#!/bin/sh
echo "condor_rm $*" >> {calls}
echo "All jobs in cluster 4242 have been marked for removal"
""")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_htcondor_submit_status_cancel_with_stubs(condor_stubs: Path) -> None:
    system = HTCondorSystem(script_dir=condor_stubs / "scripts")
    spec = WorkerSpec(**{**FULL.__dict__, "log_dir": str(condor_stubs / "logs")})
    assert system.submit(spec) == "4242.0"
    submitted = (condor_stubs / "submitted.sub").read_text()
    assert submitted == system.render(spec)
    states = system.status(["4242.0", "4243.0", "4244.0", "9.0"])
    assert states == {"4242.0": JobState.RUNNING, "4243.0": JobState.TIMEOUT,
                      "4244.0": JobState.COMPLETED, "9.0": JobState.UNKNOWN}
    system.cancel(["4242.0"])
    calls = (condor_stubs / "calls").read_text().splitlines()
    assert calls[0].startswith("condor_submit ") and calls[-1] == "condor_rm 4242.0"


def test_htcondor_unparseable_submit_output(condor_stubs: Path) -> None:
    with pytest.raises(WorkerError, match="no cluster id"):
        HTCondorSystem()._parse_job_id("ERROR: something went wrong")


def test_missing_scheduler_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    spec = WorkerSpec(**{**FULL.__dict__, "log_dir": str(tmp_path / "logs")})
    with pytest.raises(BackendUnavailableError, match="'sbatch' is not on PATH"):
        SlurmSystem(script_dir=tmp_path).submit(spec)


def test_slurm_submit_with_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _write_exe(bindir / "sbatch", f'#!/bin/sh\necho "$*" > {tmp_path}/argv\necho "77;cluster"\n')
    _write_exe(bindir / "squeue", "#!/bin/sh\necho '77|RUNNING'\necho '78|CANCELLED by 0'\n")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    spec = WorkerSpec(**{**FULL.__dict__, "log_dir": str(tmp_path / "logs")})
    assert SlurmSystem(script_dir=tmp_path).submit(spec) == "77"
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:2] == ["--parsable", "--qos=high"]
    assert SlurmSystem().status(["77", "78", "79"]) == {
        "77": JobState.RUNNING, "78": JobState.CANCELLED, "79": JobState.UNKNOWN}


# -- state tables ---------------------------------------------------------------------------

@pytest.mark.parametrize("system, raw, state", [
    (SlurmSystem, "PENDING", JobState.PENDING), (SlurmSystem, "RUNNING", JobState.RUNNING),
    (SlurmSystem, "COMPLETING", JobState.RUNNING), (SlurmSystem, "COMPLETED", JobState.COMPLETED),
    (SlurmSystem, "FAILED", JobState.FAILED), (SlurmSystem, "NODE_FAIL", JobState.FAILED),
    (SlurmSystem, "OUT_OF_MEMORY", JobState.FAILED), (SlurmSystem, "CANCELLED", JobState.CANCELLED),
    (SlurmSystem, "PREEMPTED", JobState.CANCELLED), (SlurmSystem, "TIMEOUT", JobState.TIMEOUT),
    (HTCondorSystem, "1", JobState.PENDING), (HTCondorSystem, "2", JobState.RUNNING),
    (HTCondorSystem, "3", JobState.CANCELLED), (HTCondorSystem, "4", JobState.COMPLETED),
    (HTCondorSystem, "5", JobState.FAILED), (HTCondorSystem, "timeout", JobState.TIMEOUT),
    (LocalSystem, "running", JobState.RUNNING), (LocalSystem, "0", JobState.COMPLETED),
    (LocalSystem, "124", JobState.TIMEOUT), (LocalSystem, "-15", JobState.CANCELLED),
])
def test_state_table(system: type[BatchSystem], raw: str, state: JobState) -> None:
    assert system.states[raw] is state


def test_every_table_maps_into_jobstate() -> None:
    for key in SYSTEMS:
        table = type(get_system(key)).states
        assert table and all(isinstance(v, JobState) for v in table.values())
        # A walltime end is expected for pilot workers: mapped, and not a failure.
        assert JobState.TIMEOUT in table.values() and not JobState.TIMEOUT.failed


def test_jobstate_properties() -> None:
    assert [s.value for s in JobState] == ["PENDING", "RUNNING", "COMPLETED", "FAILED",
                                           "CANCELLED", "TIMEOUT", "UNKNOWN"]
    assert {s for s in JobState if s.active} == {JobState.PENDING, JobState.RUNNING}


# -- --time -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, minutes", [
    ("90", 90), (90, 90), ("90m", 90), ("90min", 90), ("2h", 120), ("1h30m", 90), ("1d", 1440),
    ("1:30:00", 90), ("0:00:30", 1), ("1-00:00:00", 1440), ("61s", 2), (" 2H ", 120),
])
def test_parse_time(text: str | int, minutes: int) -> None:
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:30", "2x", "-5", "0", "0m", "1:75:00", "h", True])
def test_parse_time_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="time must be"):
        parse_time(text)  # type: ignore[arg-type]


def test_format_hms() -> None:
    assert [format_hms(m) for m in (1, 90, 1440)] == ["0:01:00", "1:30:00", "24:00:00"]


# -- option checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (dict(), "exactly one of manager"),
    (dict(manager="h:1", name="x"), "exactly one of manager"),
    (dict(manager="nohost"), "HOST:PORT"),
    (dict(manager="h:70000"), "HOST:PORT"),
    (dict(manager="h:1", cores=0), "cores must be a positive"),
    (dict(manager="h:1", memory_mb=-1), "memory_mb must be a positive"),
    (dict(manager="h:1", gpus=-1), "gpus must be"),
    (dict(manager="h:1", features=("novalue",)), "key=value"),
    (dict(manager="h:1", time_min="soon"), "time must be"),
    (dict(manager="h:1", partition="a b"), "partition must be"),
    (dict(manager="h:1", worker_timeout_s=1), "worker_timeout_s must be at least 10 seconds"),
    (dict(manager="h:1", cpus=2), "unknown worker option 'cpus'; valid options: manager, name"),
])
def test_spec_validation(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerSpec.from_options(**options)


def test_unknown_system_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: slurm, condor, local"):
        get_system("pbs")
    assert get_system("htcondor").name == "condor"


def test_construction_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a command ran at construction")
    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    for key in SYSTEMS:
        get_system(key)
    WorkerPool(SlurmSystem(), FULL, count=3)


def test_pool_rejects_bad_count() -> None:
    with pytest.raises(ValueError, match="count"):
        WorkerPool(SlurmSystem(), FULL, count=0)


def test_worker_wall_time_leaves_before_walltime() -> None:
    assert FULL.worker_wall_time() == 7200 - 60
    assert WorkerSpec(manager="h:1", time_min=5).worker_wall_time() == 270
    assert MINIMAL.worker_wall_time() is None


def test_old_unitless_spec_names_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        spec = WorkerSpec.from_options(manager="h:1", time="2h", memory=100, disk=5, worker_timeout=60)
    assert "WorkerSpec(time=) is deprecated: use time_min=" in " ".join(str(w.message) for w in caught)
    assert (spec.time_min, spec.memory_mb, spec.disk_mb, spec.worker_timeout_s) == (120, 100, 5, 60)
    with pytest.warns(DeprecationWarning, match="worker_timeout_s="):
        assert WorkerSpec(manager="h:1", worker_timeout=30).worker_timeout_s == 30
    with pytest.warns(DeprecationWarning, match="WorkerSpec.time is deprecated"):
        assert spec.time == 120
    with pytest.raises(TypeError, match="not both"):
        WorkerSpec.from_options(manager="h:1", time=5, time_min=5)


# -- the CLI ----------------------------------------------------------------------------------

def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    for opt in ("--manager", "--name", "--count", "--cores", "--memory", "--disk", "--gpus",
                "--feature", "--time", "--password", "--partition", "--account", "--extra", "--python"):
        assert opt in out


@pytest.mark.parametrize("argv, message", [
    (["slurm", "--manager", "h:1", "--password", "/does/not/exist"], "does not exist"),
    (["slurm", "--manager", "nohost"], "HOST:PORT"),
    (["local", "--manager", "h:1", "--feature", "bad"], "key=value"),
])
def test_cli_errors_are_one_sentence(argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["slurm", "--manager", "h:1", "--time", "soon"]) == 2
    assert "time must be" in capsys.readouterr().err


def test_cli_submit_failure_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    assert cli_main(["slurm", "--manager", "127.0.0.1:1", "--log-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shadho: error: cannot submit") and "Traceback" not in err


# -- a local-process pool with real workers --------------------------------------------------

@pytest.mark.workqueue
def test_local_pool_keeps_n_workers(tmp_path: Path) -> None:
    import work_queue

    import secrets

    password = tmp_path / "pw"
    # A password of its own: a worker left by another run on this machine (same feature)
    # that reaches a reused port must not join this manager.
    password.write_text(secrets.token_hex(16))
    q = work_queue.WorkQueue(port=0)
    q.specify_password_file(str(password))
    spec = WorkerSpec(manager=f"localhost:{q.port}", password=str(password), cores=1,
                      worker_timeout_s=30, python=sys.executable, launcher=str(LAUNCHER),
                      log_dir=str(tmp_path / "logs"), features=("pool=local",))
    system = LocalSystem(script_dir=tmp_path)
    pool = WorkerPool(system, spec, count=2, poll_interval=0.5)
    thread = threading.Thread(target=pool.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    try:
        for _ in range(4):
            t = work_queue.Task('echo "$SHADHO_BATCH_JOB"')
            t.specify_feature("pool=local")
            t.specify_cores(1)
            q.submit(t)
        outs = []
        deadline = time.monotonic() + 60
        while len(outs) < 4 and time.monotonic() < deadline:
            t = q.wait(1)
            if t is not None:
                outs.append(t.output.strip())
        assert len(outs) == 4 and set(outs) <= set(pool.submitted)
        victim = pool.submitted[0]
        system.cancel([victim])
        deadline = time.monotonic() + 20
        while len(pool.submitted) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pool.ended.get(victim) is JobState.CANCELLED and len(pool.jobs) == 2
    finally:
        stop_pool(pool, thread, q)
        del q
    assert not pool.jobs
    assert all(system.status([j])[j] is not JobState.RUNNING for j in pool.submitted)


def test_pool_stops_when_master_never_answers(tmp_path: Path) -> None:
    spec = WorkerSpec(manager="127.0.0.1:1", worker_timeout_s=10, python=sys.executable,
                      launcher=str(LAUNCHER), log_dir=str(tmp_path / "logs"))
    system = LocalSystem(script_dir=tmp_path)
    pool = WorkerPool(system, spec, count=1, poll_interval=0.2, master_grace=1)
    t0 = time.monotonic()
    assert pool.run(handle_signals=False) == "master gone"
    assert time.monotonic() - t0 < 15 and not pool.jobs


def test_pool_gives_up_when_jobs_fail_at_once(tmp_path: Path) -> None:
    spec = WorkerSpec(manager="127.0.0.1:1", python="/bin/false", launcher=str(LAUNCHER),
                      log_dir=str(tmp_path / "logs"))
    pool = WorkerPool(LocalSystem(script_dir=tmp_path), spec, count=2, poll_interval=0.1,
                      master_grace=60, max_quick_failures=3, probe=lambda: True)
    with pytest.raises(ShadhoError, match="failed right after starting"):
        pool.run(handle_signals=False)
