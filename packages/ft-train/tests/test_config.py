import pytest

from ft_core import FtError
from ft_train import load_run_config, run_training

GOOD = """
model:
  source: smollm2-135m-instruct
data:
  train:
    - data/a.jsonl
    - {path: data/b.json, format: alpaca}
train:
  output_dir: out
  learning_rate: 1.0e-4
"""


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def write_data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "data/b.json").write_text('[{"instruction": "q", "output": "a"}]')


@pytest.fixture(autouse=True)
def _data(tmp_path):
    write_data(tmp_path)


def test_good_config_resolves_data_paths_relative_to_the_file(tmp_path):
    config = load_run_config(write(tmp_path, GOOD))
    assert [f.path for f in config.data.train] == [str(tmp_path / "data/a.jsonl"), str(tmp_path / "data/b.json")]
    assert [f.format for f in config.data.train] == ["auto", "alpaca"]
    assert config.adapter.type == "lora" and config.train.stage == "sft"
    assert config.train.trainer_args == {"learning_rate": 1.0e-4}


@pytest.mark.parametrize("old, new, expected", [
    ("  source:", "  sorce:", "unknown key 'model.sorce' (did you mean 'source'?)"),
    ("\ntrain:\n", "\ntrian:\n", "unknown key 'trian' (did you mean 'train'?) (and 1 more)"),
    ("    - {path: data/b.json, format: alpaca}", "    - {path: data/b.json, fromat: alpaca}",
     "unknown key 'data.train.1.fromat' (did you mean 'format'?)"),
    ("  output_dir: out\n", "", "missing key 'train.output_dir'"),
    ("format: alpaca", "format: csvv", "data.train.1.format: Input should be 'auto', 'alpaca' or 'openai'"),
])
def test_bad_keys_are_named_with_a_suggestion(tmp_path, old, new, expected):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(FtError) as info:
        load_run_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_trainer_key_suggests_the_trl_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GOOD.replace("learning_rate", "lerning_rate"))
    with pytest.raises(FtError, match=r"unknown key 'train.lerning_rate' \(did you mean 'learning_rate'\?\)"):
        run_training(path)


def test_missing_config_and_bad_yaml(tmp_path):
    with pytest.raises(FtError, match="run config .*nope.yaml does not exist"):
        load_run_config(tmp_path / "nope.yaml")
    with pytest.raises(FtError, match="invalid YAML"):
        load_run_config(write(tmp_path, "model: [unclosed"))


def test_missing_data_file_is_named_before_any_model_loads(tmp_path):
    (tmp_path / "data/b.json").unlink()
    with pytest.raises(FtError, match=r"run.yaml: data.train.1: data file .*data/b.json does not exist"):
        load_run_config(write(tmp_path, GOOD))


def test_unknown_model_is_named_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output_dir "out" is relative to the working directory
    path = write(tmp_path, GOOD.replace("source: smollm2-135m-instruct", "source: not-a-model"))
    with pytest.raises(FtError, match="unknown model 'not-a-model'"):
        run_training(path)
    assert not (tmp_path / "out").exists()
