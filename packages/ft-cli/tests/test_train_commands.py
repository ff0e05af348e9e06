"""`ft train --convert` prints a LLaMA-Factory YAML as ft's run config; `--nproc` starts the launcher."""

import json

import yaml
from typer.testing import CliRunner

from ft_cli.app import app

LF = """
model_name_or_path: {model}
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 4
dataset: my_alpaca
dataset_dir: {data}
template: qwen
cutoff_len: 64
output_dir: {out}
"""


def test_convert_prints_the_ft_yaml(tmp_path, tiny_chat_dir):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"my_alpaca": {"file_name": "a.json"}}))
    path = tmp_path / "lf.yaml"
    path.write_text(LF.format(model=tiny_chat_dir, data=tmp_path / "data", out=tmp_path / "out"))
    result = CliRunner().invoke(app, ["train", "--convert", str(path)])
    assert result.exit_code == 0, result.output
    assert "# ignored: do_train (ft always trains)" in result.stdout
    printed = yaml.safe_load(result.stdout)
    assert printed["adapter"] == {"type": "lora", "r": 4, "alpha": 8} and printed["train"]["stage"] == "sft"
    from ft_train import load_run_config

    (tmp_path / "ft.yaml").write_text(result.stdout)
    assert load_run_config(tmp_path / "ft.yaml").data.registry == str(tmp_path / "data" / "dataset_info.json")
    plain = tmp_path / "ft.yaml"
    result = CliRunner().invoke(app, ["train", "--convert", str(plain)])
    assert result.exit_code == 2 and "is not a LLaMA-Factory training YAML" in result.stderr


def test_nproc_starts_the_launcher_even_for_one_process_and_without_it_the_run_stays_here(tmp_path, monkeypatch):
    """DeepSpeed and FSDP need a launcher, on one GPU too: `--nproc 1` must start torchrun."""
    import ft_train
    import ft_train.launch

    launched, in_process = [], []
    monkeypatch.setattr(ft_train.launch, "launch", lambda config, nproc, **kw: launched.append(nproc) or 0)
    monkeypatch.setattr(ft_train, "run_training", lambda config, **kw: in_process.append(config) or 1 / 0)
    path = tmp_path / "run.yaml"
    (tmp_path / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    path.write_text(yaml.safe_dump({"model": {"source": "smollm2-135m-instruct"},
                                    "data": {"train": ["train.jsonl"]}, "train": {"output_dir": str(tmp_path / "o")}}))
    for nproc in ("1", "3"):
        assert CliRunner().invoke(app, ["train", str(path), "--nproc", nproc]).exit_code == 0
    assert launched == [1, 3] and in_process == []
    CliRunner().invoke(app, ["train", str(path)])
    assert launched == [1, 3] and in_process == [path]
