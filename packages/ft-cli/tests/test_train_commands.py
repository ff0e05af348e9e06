"""`ft train --convert` prints a LLaMA-Factory YAML as ft's run config."""

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
