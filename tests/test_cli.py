"""The ``shadho`` command: status, export, dispatch, errors, and live progress."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from shadho import Shadho
from shadho import cli, cli_read
from shadho.status import parse_plain, render_plain
from shadho.store import ResultsStore

from searches import SPEC, objective, rung_search, run_search  # noqa: E402

SHADHO_BIN = Path(sys.executable).parent / "shadho"
SPACE_NAMES = ["svm/linear", "svm/rbf", "svm/poly"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "r.db"
    run_search(path)
    return path


@pytest.fixture()
def store_trials(db):
    with ResultsStore(db, readonly=True) as store:
        return store.trials(store.experiment_id("t"))


def run_cli(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- status

def test_status_plain_table(db, capsys, store_trials):
    rc, out, err = run_cli(capsys, "status", db)
    assert rc == 0, err
    snap = parse_plain(out)
    assert snap["experiment"] == "t"
    assert snap["master"] == "stopped"
    assert snap["trials"] == 30
    assert [r["space"] for r in snap["spaces"]] == SPACE_NAMES
    for row in snap["spaces"]:
        mine = [t for t in store_trials if t.searchspace == row["space"]]
        assert row["done"] == sum(t.state == "COMPLETE" for t in mine)
        assert row["failed"] == sum(t.state == "FAILED" for t in mine)
        assert row["running"] == 0 and row["waiting"] == 0
        losses = [t.loss for t in mine if t.loss is not None]
        assert row["best_loss"] == pytest.approx(min(losses), rel=1e-5)  # 6 significant digits
        assert row["classes"] == ["small", "big"]
        assert row["trials_per_min"] > 0
    poly = snap["spaces"][2]
    assert set(poly["best_params"]) == {"C", "degree", "coef"}
    assert poly["failed"] > 0  # degree 5 fails
    assert [r["class"] for r in snap["classes"]] == ["small", "big"]
    assert sum(r["done"] + r["failed"] for r in snap["classes"]) == 30
    best = min(t.loss for t in store_trials if t.loss is not None)
    assert snap["best_loss"] == pytest.approx(best, rel=1e-5)


def test_status_plain_reads_at_a_glance(db, capsys, store_trials):
    import datetime

    from shadho.status import LEGEND

    rc, out, _ = run_cli(capsys, "status", db)
    snap = parse_plain(out)
    first = min(t.submit_time for t in store_trials)
    started = datetime.datetime.fromisoformat(snap["started"])
    assert started.tzinfo is not None and abs(started.timestamp() - first) < 0.01
    assert snap["budget"] == 30 and snap["finished"] == 30 and snap["eta_s"] is None
    assert snap["elapsed_s"] > 0 and out.split("elapsed_s\t")[1].split("\n")[0].count(".") == 1
    assert "running" not in snap and "queued" not in snap  # only while a master runs
    failed = [t for t in store_trials if t.state == "FAILED"]
    assert sum(r["count"] for r in snap["failures"]) == len(failed) > 0
    assert snap["failures"][0]["cause"] == "ValueError: degree <num> is not supported" or \
        snap["failures"][0]["cause"].startswith("ValueError: degree")
    legend = {r["column"]: r["meaning"] for r in snap["legend"]}
    assert legend == LEGEND
    for col in ("complexity", "uncertainty", "rank", "trials_per_min", "mean_runtime_s"):
        assert col in legend
    # rounded: no float cell longer than 6 significant digits
    for row in snap["spaces"]:
        for key in ("best_loss", "complexity", "uncertainty", "trials_per_min"):
            if isinstance(row[key], float):
                assert len(repr(row[key]).replace(".", "").lstrip("0")) <= 7, (key, row[key])


def test_status_plain_is_tab_separated_with_fixed_columns(db, capsys):
    _, out, _ = run_cli(capsys, "status", db)
    lines = out.splitlines()
    header = lines[lines.index("[spaces]") + 1].split("\t")
    assert header[:4] == ["space", "done", "failed", "running"]
    for line in lines[lines.index("[spaces]") + 2:lines.index("[spaces]") + 5]:
        assert len(line.split("\t")) == len(header)


def test_status_json_and_render_roundtrip(db, capsys):
    rc, out, _ = run_cli(capsys, "status", db, "--json")
    assert rc == 0
    snap = json.loads(out)
    assert [r["space"] for r in snap["spaces"]] == SPACE_NAMES
    again = parse_plain(render_plain(snap))
    assert [r["done"] for r in again["spaces"]] == [r["done"] for r in snap["spaces"]]


def test_status_rich_tables(db, capsys, monkeypatch):
    import rich  # noqa: F401 - installed by the test extras; a missing one must fail
    monkeypatch.setattr(cli_read, "_stdout_is_tty", lambda: True)
    rc, out, _ = run_cli(capsys, "status", db)
    assert rc == 0
    assert "search spaces" in out and "compute classes" in out
    for name in SPACE_NAMES + ["small", "big"]:
        assert name in out
    assert "30/30 trials done (100%), elapsed" in out and "failed" in out
    assert "current failures (by cause)" in out and "ValueError: degree" in out
    assert "legend: fail: failed trials" in out and "cplx: complexity" in out


def test_status_rich_shows_rungs_promotions_and_budget_spent(tmp_path, capsys, monkeypatch):
    import rich  # noqa: F401
    monkeypatch.setattr(cli_read, "_stdout_is_tty", lambda: True)
    rung_search(tmp_path / "mf.db")
    rc, out, _ = run_cli(capsys, "status", tmp_path / "mf.db")
    assert rc == 0
    assert "rungs (budget spent: 12)" in out  # 6 x 1 + 2 x 3 epochs finished
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()}
    # rung, budget, configs, finished, running, promoted, finished by class
    assert lines["0"][:7] == ["0", "1", "6", "6", "0", "0", "cpu"]
    assert lines["1"][:7] == ["1", "3", "2", "2", "0", "2", "gpu"]
    assert lines["2"][:6] == ["2", "9", "1", "0", "1", "1"]
    assert "promoted: promoted into it from the rung below" in out
    rc, out, _ = run_cli(capsys, "status", cli_db_without_rungs(tmp_path))
    assert "rungs (budget" not in out and "promoted:" not in out


def cli_db_without_rungs(tmp_path):
    path = tmp_path / "plain.db"
    run_search(path, max_tasks=4, classes=False)
    return path


def test_status_watch_prints_count_blocks(db, capsys):
    rc, out, _ = run_cli(capsys, "status", db, "--watch", "0.05", "--count", "3")
    assert rc == 0
    assert out.count("\n[spaces]\n") == 3
    last = parse_plain(out)
    assert last["trials"] == 30 and last["finished"] == 30 and last["budget"] == 30
    assert last["elapsed_s"] > 0 and "eta_s" in last and last["failures"]


def test_status_while_a_master_writes(tmp_path, capsys):
    db = tmp_path / "live.db"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from shadho import Shadho, spaces
        def objective(p):
            time.sleep(0.1)
            return p['x'] ** 2
        opt = Shadho('live', objective, {{'x': spaces.uniform(-1, 1)}}, backend={str(db)!r},
                     max_tasks=40, local_workers=2, quiet=True, seed=0)
        opt.run()
        print(len(opt.trials), sum(t.state == 'COMPLETE' for t in opt.trials))
    """))
    writer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    snaps = []
    deadline = time.time() + 60
    try:
        while writer.poll() is None and time.time() < deadline:
            if db.exists():
                rc, out, err = run_cli(capsys, "status", db)
                if rc == 1 and not snaps and "no shadho tables" in err:
                    continue  # the writer created the file and has not committed its schema yet
                assert rc == 0, err
                snaps.append(parse_plain(out))
            time.sleep(0.05)
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert out.split() == ["40", "40"]
    seen = [s for s in snaps if s.get("experiment") == "live"]
    assert len(seen) >= 3
    assert any(s["master"] == "running" and s["workers"] is not None for s in seen)
    live = [s for s in seen if s["master"] == "running" and s.get("eta_s") is not None]
    assert live, "no ETA while the master ran"
    for s in live:
        assert s["budget"] == 40 and 0 <= s["finished"] <= 40
        assert s["elapsed_s"] >= 0
    # running vs queued come with the master's first progress report
    assert any(isinstance(s["running"], int) and isinstance(s["queued"], int) for s in live)
    assert [s["trials"] for s in seen] == sorted(s["trials"] for s in seen)
    rc, out, _ = run_cli(capsys, "status", db)
    final = parse_plain(out)
    assert final["master"] == "stopped" and final["spaces"][0]["done"] == 40


# ---------------------------------------------------------------- export

def test_export_csv_stdout_roundtrip(db, capsys, store_trials):
    rc, out, err = run_cli(capsys, "export", db, "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["id"]) for r in rows] == [t.id for t in store_trials]
    for row, t in zip(rows, store_trials):
        assert row["state"] == t.state.value
        assert row["searchspace"] == t.searchspace
        assert row["compute_class"] == t.compute_class
        if t.loss is not None:
            assert float(row["loss"]) == pytest.approx(t.loss)
        (kernel, p), = t.params["svm"].items()
        assert float(row[f"params.svm.{kernel}.C"]) == pytest.approx(p["C"])


def test_export_json_file_roundtrip(db, tmp_path, capsys, store_trials):
    target = tmp_path / "out.json"
    rc, out, err = run_cli(capsys, "export", db, "--format", "json", "-o", target)
    assert rc == 0 and out == "", err
    doc = json.loads(target.read_text())
    assert doc["format"] == "shadho" and doc["exp_key"] == "t"
    assert [s["name"] for s in doc["spaces"]] == SPACE_NAMES
    assert [t["params"] for t in doc["trials"]] == [t.params for t in store_trials]
    assert [t["loss"] for t in doc["trials"]] == [t.loss for t in store_trials]
    rc, out, _ = run_cli(capsys, "export", db, "--format", "json")
    assert rc == 0 and json.loads(out) == doc


def test_export_csv_file(db, tmp_path, capsys):
    target = tmp_path / "t.csv"
    assert run_cli(capsys, "export", db, "--format", "csv", "-o", target)[0] == 0
    assert len(list(csv.DictReader(target.open()))) == 30


# ---------------------------------------------------------------- experiments

@pytest.fixture(scope="module")
def two_exps(db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("two") / "two.db"
    shutil.copy(db, path)
    run_search(path, key="u", max_tasks=4)
    return path


def test_several_experiments_need_exp(two_exps, capsys):
    rc, out, err = run_cli(capsys, "status", two_exps)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and "--exp" in err and "t, u" in err
    rc, out, _ = run_cli(capsys, "status", two_exps, "--exp", "u")
    assert rc == 0 and parse_plain(out)["trials"] == 4
    rc, out, err = run_cli(capsys, "export", two_exps, "--format", "json", "--exp", "nope")
    assert rc == 1 and "no experiment 'nope'" in err and "t, u" in err


def test_store_without_experiments(tmp_path, capsys):
    path = tmp_path / "empty.db"
    ResultsStore(path).close()
    rc, out, _ = run_cli(capsys, "status", path)
    assert rc == 0 and parse_plain(out)["spaces"] == []
    rc, _, err = run_cli(capsys, "export", path, "--format", "csv")
    assert rc == 1 and "no experiments" in err


# ---------------------------------------------------------------- errors

def _newer_schema(db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "newer.db"
    shutil.copy(db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    return path


def _bad_files(db: Path, tmp_path: Path) -> dict[str, Path]:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE x (a)")
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database\n" * 50)
    return {"missing": tmp_path / "nope.db", "sqlite": other, "text": text,
            "newer": _newer_schema(db, tmp_path), "folder": tmp_path}


@pytest.mark.parametrize("kind,needle", [("missing", "no such results file"),
                                         ("sqlite", "not a shadho results file"),
                                         ("text", "not a shadho results file"),
                                         ("newer", "newer shadho"),
                                         ("folder", "directory")])
@pytest.mark.parametrize("command", [["status"], ["export", "--format", "csv"], ["report", "-o", "R"]])
def test_bad_files_are_one_line_errors(db, tmp_path, capsys, kind, needle, command):
    path = _bad_files(db, tmp_path)[kind]
    argv = [command[0], path] + [tmp_path / a if a == "R" else a for a in command[1:]]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 1
    assert out == ""
    assert err.startswith("shadho: error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err


def test_errors_from_the_installed_command(db, tmp_path):
    if not SHADHO_BIN.exists():
        pytest.fail("the shadho console script is not installed next to this Python")
    for kind, path in _bad_files(db, tmp_path).items():
        proc = subprocess.run([str(SHADHO_BIN), "status", str(path)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1, (kind, proc.stderr)
        assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def test_installed_command_status_and_python_m_export(db):
    if not SHADHO_BIN.exists():
        pytest.fail("the shadho console script is not installed next to this Python")
    proc = subprocess.run([str(SHADHO_BIN), "status", str(db)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r["space"] for r in parse_plain(proc.stdout)["spaces"]] == SPACE_NAMES
    proc = subprocess.run([sys.executable, "-m", "shadho", "export", str(db), "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["trials"]) == 30


@pytest.mark.parametrize("argv", [[], ["status"], ["export", "x.db"], ["bogus"],
                                  ["status", "x.db", "--watch", "-1"],
                                  ["export", "x.db", "--format", "xml"]])
def test_usage_errors_exit_2(argv, capsys):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2
    assert "Traceback" not in err and err


@pytest.mark.parametrize("command", ["status", "report", "export"])
def test_help(command, capsys):
    rc, out, _ = run_cli(capsys, command, "--help")
    assert rc == 0 and "RESULTS.db" in out and "--exp" in out


def test_top_level_help_lists_commands(capsys):
    rc, out, _ = run_cli(capsys, "--help")
    assert rc == 0
    for name in ("demo", "status", "report", "export", "workers"):
        assert name in out


# ---------------------------------------------------------------- dispatch

@pytest.mark.parametrize("command,option", [("demo", "--quick"), ("workers", "--manager"),
                                            ("retry", "exp_key"), ("plan", "--pool")])
def test_every_command_is_a_row_of_the_one_table(command, option, capsys):
    rc, out, _ = run_cli(capsys, command, "--help")
    assert rc == 0 and f"usage: shadho {command}" in out and option in out


@pytest.mark.parametrize("argv", [["workers", "slurm", "--manager", "nohost"],
                                  ["retry", "/no/such/file.db", "e"],
                                  ["plan", "/no/such/file.db", "--pool", "cpu=2", "--hours", "1"]])
def test_every_command_fails_with_the_one_prefix(argv, capsys):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 1 and err.startswith("shadho: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_a_command_runs_with_parsed_arguments(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("shadho.demo")
    fake.add_arguments = lambda p: p.add_argument("--quick", action="store_true")
    fake.run = lambda args: seen.append(args.quick) or 3
    monkeypatch.setitem(sys.modules, "shadho.demo", fake)
    rc, _, _ = run_cli(capsys, "demo", "--quick")
    assert rc == 3 and seen == [True]


def test_a_command_whose_module_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "demo", cli.Command("shadho._no_such_module", "x"))
    rc, _, err = run_cli(capsys, "demo")
    assert rc == 1 and "not available" in err and err.count("\n") == 1


def test_a_command_reports_a_missing_dependency(monkeypatch, capsys):
    fake = types.ModuleType("shadho.demo")

    def run(args):
        import sklearn_not_installed_here  # noqa: F401

    fake.add_arguments = lambda p: None
    fake.run = run
    monkeypatch.setitem(sys.modules, "shadho.demo", fake)
    rc, _, err = run_cli(capsys, "demo")
    assert rc == 1 and "sklearn_not_installed_here" in err and "Traceback" not in err


def test_report_without_matplotlib(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, _, err = run_cli(capsys, "report", db, "-o", tmp_path / "r")
    assert rc == 1
    assert "shadho report needs matplotlib: pip install 'shadho[cli]'" in err


# ---------------------------------------------------------------- live progress

class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_progress_choices(monkeypatch):
    from shadho.progress import Progress, make_progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert type(make_progress(False, 10, None)) is Progress
    monkeypatch.setattr(sys, "stderr", _Tty())
    quiet = make_progress(True, 10, None)
    assert type(quiet) is Progress and quiet.quiet
    import rich  # noqa: F401 - installed by the test extras; a missing one must fail
    from shadho.progress_rich import RichProgress

    bar = make_progress(False, 10, None)
    assert isinstance(bar, RichProgress)
    bar.update(done=1, failed=0, running=1, workers=1, best=0.5)
    bar.close()


def test_rich_progress_budget_and_timeout():
    import rich  # noqa: F401 - installed by the test extras; a missing one must fail
    from rich.console import Console

    from shadho.progress_rich import RichProgress

    buf = io.StringIO()
    bar = RichProgress(total=10, console=Console(file=buf, force_terminal=True, width=140))
    bar.update(done=2, failed=1, running=2, workers=3, best=0.125)
    bar.close()
    bar.close()
    text = buf.getvalue()
    assert "3/10" in text and "0.125" in text and "3 workers" in text and "1 failed" in text

    buf = io.StringIO()
    bar = RichProgress(total=None, timeout=60, console=Console(file=buf, force_terminal=True, width=140))
    bar.update(done=0, failed=0, running=1, workers=1, best=None)
    bar.close()
    assert "/60 s" in buf.getvalue()


def test_quiet_run_prints_nothing(tmp_path, capfd):
    opt = Shadho("q", objective, SPEC, backend=str(tmp_path / "q.db"), max_tasks=4,
                 local_workers=1, quiet=True, seed=0)
    opt.run()
    opt.close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def _none_objective(params):
    (kernel, p), = params["m"].items()
    return 0.5 if p.get("opt") is None else 0.25


def test_export_csv_groups_columns_and_tells_none_from_not_applicable(tmp_path, capsys):
    import datetime

    from shadho import spaces

    spec = {"m": spaces.scope(exclusive=True,
                              a={"x": spaces.uniform(0, 1), "opt": spaces.choice([None, "on"])},
                              b={"y": spaces.uniform(0, 1)})}
    db = tmp_path / "n.db"
    opt = Shadho("n", _none_objective, spec, backend=str(db), max_tasks=12, manager="local",
                 local_workers=1, quiet=True, seed=3)
    opt.run()
    opt.close()
    rc, out, err = run_cli(capsys, "export", db, "--format", "csv")
    assert rc == 0, err
    reader = csv.DictReader(io.StringIO(out))
    cols = reader.fieldnames
    rows = list(reader)
    assert cols[:8] == ["id", "state", "searchspace", "space_id", "compute_class", "worker", "attempts",
                        "error"]
    params = [c for c in cols if c.startswith("params.")]
    assert params == ["params.m.a.x", "params.m.a.opt", "params.m.b.y"]  # grouped by space
    assert cols.index("loss") > cols.index("params.m.b.y")
    assert cols[-7:] == ["submit_time", "submit_time_iso", "start_time", "start_time_iso", "finish_time",
                         "finish_time_iso", "runtime_s"]
    a = [r for r in rows if r["searchspace"] == "m/a"]
    b = [r for r in rows if r["searchspace"] == "m/b"]
    assert a and b
    assert {r["params.m.a.opt"] for r in a} <= {"None", "on"} and "None" in {r["params.m.a.opt"] for r in a}
    assert all(r["params.m.b.y"] == "" for r in a) and all(r["params.m.a.opt"] == "" for r in b)
    for r in rows:
        iso = datetime.datetime.fromisoformat(r["finish_time_iso"])
        assert abs(iso.timestamp() - float(r["finish_time"])) < 0.001
        assert r["error"] == ""  # nothing failed: empty, not "None"


def test_the_snapshot_json_form_round_trips_and_renders_alike(db):
    from shadho.snapshot import Snapshot
    from shadho.status import collect, render_json

    with ResultsStore(db, readonly=True) as r:
        snap = collect(r, r.experiment_id("t"))
    again = Snapshot.from_dict(json.loads(render_json(snap)))
    assert again == snap
    assert render_plain(again) == render_plain(snap.to_dict()) == render_plain(snap)
