"""A cluster workflow (issue 11): an unnamed master with a fixed port and a password, and workers
that arrive only as SLURM jobs of the real one-node cluster (``shadho workers slurm``, the command
the master prints). Every trial records a SLURM job id; none ran on the login host itself.
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shadho import Shadho, spaces
from test_slurm import LAUNCHER, password, queued_jobs, slurm_conf  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.workqueue]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _quad(p):
    return (p["x"] - 1.0) ** 2


def test_workers_only_as_slurm_jobs_no_trial_on_login_host(slurm_conf: str, password: Path,  # noqa: F811
                                                          tmp_path: Path, capsys) -> None:
    port = _free_port()
    host = socket.gethostname()
    before = queued_jobs()
    cli = subprocess.Popen(
        [sys.executable, "-m", "shadho", "workers", "slurm", "--manager", f"{host}:{port}",
         "--password", str(password), "--count", "2", "--cores", "1", "--time", "5m",
         "--worker-timeout", "60", "--poll", "1", "--log-dir", str(tmp_path / "logs"),
         "--launcher", str(LAUNCHER), "--job-name", "shadho-first-contact"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # No local_workers=: the master must not compute on this (login) machine.
        opt = Shadho("slurm-only", _quad, {"x": spaces.uniform(-5, 5)}, backend=str(tmp_path / "r.db"),
                     manager="workqueue", port=port, password=str(password), max_tasks=6, timeout=180,
                     seed=3, quiet=True)
        try:
            trials = opt.run()
        finally:
            opt.close()
    finally:
        cli.send_signal(signal.SIGTERM)
        try:
            _, cli_err = cli.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            cli.kill()
            _, cli_err = cli.communicate()
    err = capsys.readouterr().err
    assert f"shadho workers slurm --manager {host}:{port} --password {password}" in err
    assert len(trials) == 6
    assert all(str(t.state) == "COMPLETE" for t in trials), [(t.state, t.error) for t in trials]
    for t in trials:
        assert t.worker and re.fullmatch(rf"{re.escape(host)}/slurm:\d+", t.worker), t.worker
    assert cli.returncode == 0, cli_err[-2000:]
    assert not (queued_jobs() - before), "worker jobs left in squeue"
