"""Checkpoint archives (workers/shadho_checkpoint.py) and the master's store (shadho/checkpoints.py)."""
from __future__ import annotations

import doctest
import io
import os
import tarfile

import pytest

import shadho.checkpoints
import shadho_checkpoint as ck
from shadho.checkpoints import CheckpointStore


def _folder(path, files):
    os.makedirs(path, exist_ok=True)
    for name, data in files.items():
        p = os.path.join(path, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
    return str(path)


def test_round_trip_keeps_nested_files(tmp_path):
    src = _folder(tmp_path / "ck", {"model.pkl": b"m" * 100, "sub/opt.bin": b"o" * 5})
    assert ck.pack(src, str(tmp_path / "a.tar"), 1000) == (True, "")
    assert ck.unpack(str(tmp_path / "a.tar"), str(tmp_path / "out"), 1000) == (True, "")
    assert open(tmp_path / "out" / "sub" / "opt.bin", "rb").read() == b"o" * 5
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".ck-")]  # no temporary left


def test_nothing_to_pack_and_over_the_limit(tmp_path):
    assert ck.pack(str(tmp_path / "none"), str(tmp_path / "a.tar")) == (False, "the objective wrote no checkpoint")
    src = _folder(tmp_path / "big", {"w": b"x" * 2000})
    ok, why = ck.pack(src, str(tmp_path / "a.tar"), limit_bytes=1000)
    assert not ok and "over the limit of 1000 bytes" in why and not os.path.exists(tmp_path / "a.tar")


def _tar_with(path, members):
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


@pytest.mark.parametrize("kind, reason", [
    ("truncated", "damaged checkpoint"),
    ("garbage", "damaged checkpoint"),
    ("escape", "outside its folder"),
    ("absolute", "outside its folder"),
    ("symlink", "not a file or folder"),
    ("huge", "over the limit"),
])
def test_a_bad_archive_means_start_from_scratch(tmp_path, kind, reason):
    a = str(tmp_path / "a.tar")
    if kind in ("truncated", "huge"):
        src = _folder(tmp_path / "ck", {"w": b"x" * 5000})
        assert ck.pack(src, a)[0]
        if kind == "truncated":  # a worker killed while writing it
            with open(a, "r+b") as fh:
                fh.truncate(700)
    elif kind == "garbage":
        open(a, "wb").write(b"not a tar at all" * 50)
    else:
        name = {"escape": "../../evil", "absolute": "/tmp/evil", "symlink": "link"}[kind]
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            _tar_with(a, [(info, None)])
        else:
            info.size = 4
            _tar_with(a, [(info, b"evil")])
    out = str(tmp_path / "out")
    _folder(out, {"stale": b"old"})  # what a previous rung left there is never mixed in
    ok, why = ck.unpack(a, out, limit_bytes=1000 if kind == "huge" else ck.DEFAULT_LIMIT_BYTES)
    assert not ok and reason in why, why
    assert os.listdir(out) == []
    assert not os.path.exists("/tmp/evil") or kind != "absolute"


def test_store_accepts_refuses_evicts_and_clears(tmp_path):
    results = str(tmp_path / "r.db")
    st = CheckpointStore(results, "my exp/1", limit_bytes=3000, total_limit_bytes=25_000)  # a tar is 10 KiB at least
    assert st.root.startswith(results + ".checkpoints") and st.root.endswith("my_exp_1")
    for c in range(3):
        src = _folder(tmp_path / f"f{c}", {"w": b"x" * 2000})
        assert ck.pack(src, str(tmp_path / f"a{c}.tar"))[0]
        assert st.accept(c, str(tmp_path / f"a{c}.tar")) == ""
    open(tmp_path / "bad.tar", "wb").write(b"junk")
    assert "damaged" in st.accept(9, str(tmp_path / "bad.tar")) and st.archive_for(9) is None
    assert os.path.exists(tmp_path / "bad.tar")  # a refused archive is left where it was
    assert st.total_bytes() > 25_000
    # Config 1 ranks worst in its rung: its archive goes first.
    assert st.enforce_total({0: 0.1, 1: 0.9, 2: 0.5}) == [1]
    assert st.archive_for(1) is None and st.archive_for(0) and st.total_bytes() <= 25_000
    assert any("evicted" in why for _, why in st.refused)
    st.clear()
    assert not os.path.exists(st.root)
    with pytest.raises(ValueError, match="limit_bytes must be a positive int"):
        CheckpointStore(results, "e", limit_bytes=0)


@pytest.mark.parametrize("mod", [shadho.checkpoints, ck])
def test_docstring_examples(mod):
    assert doctest.testmod(mod).failed == 0


def test_a_shell_command_checkpoint_refused_on_the_worker_is_said_and_named_in_its_result(
        tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    with open(ck.CHECKPOINT_SPEC, "w") as fh:
        json.dump({"folder": "checkpoint-7", "checkpoint_in": None, "checkpoint_out": "checkpoint-7.tar",
                   "limit_bytes": 100}, fh)

    def command():  # what the user's command does in its sandbox: a 1 kB checkpoint, a result
        _folder(tmp_path / "checkpoint-7", {"w.bin": b"x" * 1000})
        (tmp_path / "performance.json").write_text(json.dumps({"loss": 0.25, "epochs_done": 3}))
        return 0

    assert ck.run_command_rung(ck.CHECKPOINT_SPEC, command) == 0
    assert os.path.getsize(tmp_path / "checkpoint-7.tar") == 0  # the output file exists, empty: no checkpoint
    doc = json.loads((tmp_path / "performance.json").read_text())
    assert doc["loss"] == 0.25 and doc["epochs_done"] == 3 and "over the limit of 100 bytes" in doc[ck.NOT_KEPT]
    err = capsys.readouterr().err
    assert "shadho: checkpoint not kept (" in err and "starts from scratch" in err
    # within the limit: nothing said, the result file untouched
    with open(ck.CHECKPOINT_SPEC, "w") as fh:
        json.dump({"folder": "checkpoint-7", "checkpoint_in": None, "checkpoint_out": "checkpoint-7.tar",
                   "limit_bytes": 10**6}, fh)
    assert ck.run_command_rung(ck.CHECKPOINT_SPEC, command) == 0
    assert ck.NOT_KEPT not in json.loads((tmp_path / "performance.json").read_text())
    assert os.path.getsize(tmp_path / "checkpoint-7.tar") > 0 and "not kept" not in capsys.readouterr().err
