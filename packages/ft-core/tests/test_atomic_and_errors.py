import os
import stat
import subprocess
import sys

import pytest

from ft_core import atomic_dir, atomic_write_text, closest, did_you_mean, ft_home


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half-written")
        raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left behind
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == [".ft-folder", "b.txt"]


def test_atomic_write_text(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "f.txt", "hello")
    assert path.read_text() == "hello"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_suggestions():
    assert closest("lerning_rate", ["learning_rate", "seed"]) == "learning_rate"
    assert closest("zzz", ["learning_rate"]) is None
    assert did_you_mean("sorce", ["source", "dtype"]) == " (did you mean 'source'?)"


def test_ft_home_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FT_HOME", str(tmp_path))
    assert ft_home() == tmp_path
    monkeypatch.delenv("FT_HOME")
    assert ft_home().name == "ft"


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_atomic_dir_never_replaces_a_foreign_folder_without_force(tmp_path):
    from ft_core import FtError, made_by_ft

    target = tmp_path / "out"
    (target / "sub").mkdir(parents=True)
    (target / "precious.txt").write_text("mine")
    (target / "sub" / "notes.md").write_text("notes")
    with pytest.raises(FtError, match="not empty and was not made by ft.*--force"), atomic_dir(target) as tmp:
        (tmp / "x").write_text("x")
    assert _tree(target) == ["precious.txt", "sub", "sub/notes.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_dir(target, force=True) as tmp:
        (tmp / "x").write_text("x")
    assert made_by_ft(target) and (target / "x").is_file() and not (target / "precious.txt").exists()
    with atomic_dir(target) as tmp:  # ft's own folder: replaced without asking
        (tmp / "y").write_text("y")
    assert (target / "y").is_file() and not (target / "x").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:
        (tmp / "z").write_text("z")
    assert (empty / "z").is_file()


def test_atomic_dir_never_replaces_the_input_or_the_current_folder(tmp_path, monkeypatch):
    from ft_core import FtError

    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    for target in (run, run / "adapter"):
        with pytest.raises(FtError, match="holds the input"), atomic_dir(target, force=True, sources=[run / "adapter"]):
            pass
    monkeypatch.chdir(run)
    with pytest.raises(FtError, match="current folder"), atomic_dir(".", force=True):
        pass
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FtError, match="is a file"), atomic_dir(tmp_path / "file.txt"):
        pass
    with pytest.raises(FtError, match="cannot write .*file.txt, not a folder|cannot write"), \
            atomic_dir(tmp_path / "file.txt" / "out"):
        pass
    assert _tree(tmp_path) == ["file.txt", "run", "run/adapter"]


def test_written_folders_and_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a").write_text("a")
        path = atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_temp_folders_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = [tmp_path / f".out.tmp-{dead_pid}-abcd1234", tmp_path / ".out.tmp-k2j4h5g6", tmp_path / f".out.old-{dead_pid}"]
    live = tmp_path / f".out.tmp-{os.getpid()}-zzzz9999"
    for folder in (*stale, live):
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"0" * 100)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "out"])
