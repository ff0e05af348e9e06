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
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


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
