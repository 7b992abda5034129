"""The worker launcher: hardware detection (with a fake nvidia-smi) and a real worker run.

Markers: ``workqueue`` on the test that starts a real Work Queue manager and worker.
"""
from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "workers" / "shadho_launch_worker.py"
GPU_MODEL = "NVIDIA Fake GPU 80GB"
GPU_FEATURE = "gpu_name=NVIDIA-Fake-GPU-80GB"


def _write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_gpu_bin(tmp_path: Path) -> Path:
    """A folder with an ``nvidia-smi`` that reports two GPUs of one model."""
    folder = tmp_path / "gpubin"
    folder.mkdir()
    _write_exe(folder / "nvidia-smi", f"""#!/bin/sh
case "$*" in
  *--query-gpu=name*) printf '%s\\n%s\\n' '{GPU_MODEL}' '{GPU_MODEL}' ;;
  *) echo "Attached GPUs : 2" ;;
esac
""")
    return folder


@pytest.fixture
def empty_bin(tmp_path: Path) -> Path:
    """A PATH with no nvidia-smi at all."""
    folder = tmp_path / "emptybin"
    folder.mkdir()
    return folder


def _env(path_dirs: list[Path], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SHADHO_BATCH", "CUDA_VISIBLE", "_CONDOR", "PBS_", "LSB_"))}
    env["PATH"] = os.pathsep.join(str(p) for p in path_dirs)
    env.update(extra)
    return env


def dry_run(env: dict[str, str], *args: str) -> list[str]:
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--dry-run", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return shlex.split(proc.stdout)


def features(cmd: list[str]) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == "--feature"]


def test_fake_nvidia_smi_advertises_two_gpus_and_model(fake_gpu_bin: Path) -> None:
    cmd = dry_run(_env([fake_gpu_bin]), "--manager", "master.example.org:9123")
    assert cmd[0] == "work_queue_worker"
    assert "--gpus=2" in cmd
    assert "gpus=2" in features(cmd)
    assert GPU_FEATURE in features(cmd)
    assert cmd[-2:] == ["master.example.org", "9123"]
    assert "--single-shot" not in cmd
    assert "--timeout=300" in cmd


def test_no_nvidia_smi_means_no_gpu(empty_bin: Path) -> None:
    cmd = dry_run(_env([empty_bin]), "--manager", "localhost:9123")
    assert "--gpus=0" in cmd
    assert "gpus=0" in features(cmd)
    assert not any(f.startswith("gpu_name=") for f in features(cmd))


def test_cuda_visible_devices_limits_the_count(fake_gpu_bin: Path) -> None:
    cmd = dry_run(_env([fake_gpu_bin], CUDA_VISIBLE_DEVICES="1"), "--manager", "h:1")
    assert "--gpus=1" in cmd and GPU_FEATURE in features(cmd)


def test_slurm_allocation_and_job_id(empty_bin: Path) -> None:
    env = _env([empty_bin], SLURM_JOB_ID="4242", SLURM_CPUS_PER_TASK="3",
               SLURM_CPUS_ON_NODE="8", SLURM_MEM_PER_NODE="2048")
    cmd = dry_run(env, "--manager", "h:1", "--password", "/pw", "--feature", "site=nd crc",
                  "--timeout", "60", "--wall-time", "3540")
    assert "--cores=3" in cmd and "--memory=2048" in cmd
    feats = features(cmd)
    assert {"cores=3", "slurm_job=4242", "batch_job=4242", "site=nd-crc"} <= set(feats)
    assert cmd[cmd.index("--password") + 1] == "/pw"
    assert "--timeout=60" in cmd and "--wall-time=3540" in cmd


def test_explicit_resources_win(fake_gpu_bin: Path) -> None:
    cmd = dry_run(_env([fake_gpu_bin], SLURM_JOB_ID="7"), "--manager", "h:1", "--cores", "2",
                  "--memory", "1000", "--disk", "500", "--gpus", "1")
    assert {"--cores=2", "--memory=1000", "--disk=500", "--gpus=1"} <= set(cmd)


def test_project_name_and_catalog(empty_bin: Path) -> None:
    cmd = dry_run(_env([empty_bin]), "--name", "my-search", "--catalog", "login1:9097")
    assert cmd[-2:] == ["-M", "my-search"] and "--catalog=login1:9097" in cmd


def test_explicit_job_id(empty_bin: Path) -> None:
    cmd = dry_run(_env([empty_bin]), "--manager", "h:1", "--job-id", "12.0",
                  "--job-system", "condor")
    assert {"batch_job=12.0", "condor_job=12.0"} <= set(features(cmd))


@pytest.mark.parametrize("args, message", [
    (["--manager", "nohostport"], "HOST:PORT"),
    (["--manager", "h:1", "--password", "/does/not/exist"], "does not exist"),
])
def test_bad_arguments_fail_with_one_sentence(empty_bin: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, str(LAUNCHER), *args], env=_env([empty_bin]),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_worker_binary(empty_bin: Path) -> None:
    proc = subprocess.run([sys.executable, str(LAUNCHER), "--manager", "h:1"],
                          env=_env([empty_bin]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 127 and "work_queue_worker" in proc.stderr


@pytest.mark.workqueue
def test_real_worker_runs_a_gpu_routed_task(tmp_path: Path, fake_gpu_bin: Path) -> None:
    """A launcher-started work_queue_worker joins a real manager and runs a task that asks for
    the (fake) GPU model; the task sees the job id through the inherited environment."""
    import work_queue  # the Debian python3-workqueue module (cctools 8)

    password = tmp_path / "pw"
    password.write_text("shadho-test-password")
    q = work_queue.WorkQueue(port=0)
    q.specify_password_file(str(password))
    system_path = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    env = _env([fake_gpu_bin, *map(Path, system_path)], SLURM_JOB_ID="4242")
    worker = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--manager", f"localhost:{q.port}",
         "--password", str(password), "--timeout", "30", "--workdir", str(tmp_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t = work_queue.Task('echo "job=$SLURM_JOB_ID batch=$SHADHO_BATCH_JOB gpus=$GPUS"')
        t.specify_feature(GPU_FEATURE)
        t.specify_feature("slurm_job=4242")
        t.specify_cores(1)
        t.specify_gpus(1)
        q.submit(t)
        done = None
        deadline = time.monotonic() + 60
        while done is None and time.monotonic() < deadline:
            done = q.wait(2)
        assert done is not None, "the task never ran on the launcher-started worker"
        assert done.result == work_queue.WORK_QUEUE_RESULT_SUCCESS and done.return_status == 0
        assert done.output.strip() == "job=4242 batch=4242 gpus=1"
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
        del q
