import json

import pytest
from typer.testing import CliRunner

from ft_cli.app import app

runner = CliRunner()
pytestmark = pytest.mark.slow  # loads the embedded tokenizer


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"instruction": f"Say {i}", "output": "ok " * i} for i in range(1, 21)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_preview_shows_the_rendered_rows(smol_dir, data):
    result = runner.invoke(app, ["data", "preview", str(data), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("── conversation") == 2
    assert "<|im_start|>user\nSay 1<|im_end|>" in result.stdout and "ok <|im_end|>" in result.stdout


def test_stats_reports_lengths_truncation_and_a_plot(smol_dir, data, tmp_path):
    plot = tmp_path / "lengths.png"
    result = runner.invoke(app, ["data", "stats", str(data), "--cutoff", "40", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("20 rows; tokens: min ")
    truncated = int(result.stdout.split("cutoff 40: ")[1].split(" rows")[0])
    assert 0 < truncated < 20
    assert "█" in result.stdout and plot.read_bytes()[:4] == b"\x89PNG"


def test_validate_lists_every_bad_row_and_fails(tmp_path, data):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a"}\n{"instruction": "x", "chosen": "s", "rejected": "s"}\n')
    result = runner.invoke(app, ["data", "validate", str(data), str(bad)])
    assert result.exit_code == 1
    assert f"{bad} row 1: missing key 'output'" in result.stderr
    assert f"{bad} row 2: 'chosen' equals 'rejected'" in result.stderr
    assert "20 good rows, 2 problems" in result.stdout
    assert runner.invoke(app, ["data", "validate", str(data)]).exit_code == 0


def test_validate_takes_prompt_only_files_and_checks_a_stage(tmp_path, data):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"instruction": "a"}\n{"instruction": "b", "input": "c"}\n')
    result = runner.invoke(app, ["data", "validate", str(prompts)])  # prompts only: what ppo and grpo read
    assert result.exit_code == 0 and "2 good rows, 0 problems" in result.stdout
    assert runner.invoke(app, ["data", "validate", str(prompts), "--stage", "grpo"]).exit_code == 0
    result = runner.invoke(app, ["data", "validate", str(prompts), str(data), "--stage", "sft"])
    assert result.exit_code == 1 and "20 good rows, 2 problems" in result.stdout
    assert f"{prompts} row 2: missing key 'output' (rows without an answer serve only" in result.stderr
    result = runner.invoke(app, ["data", "validate", str(data), "--stage", "dpo"])
    assert "row 1: stage 'dpo' needs preference rows, found a conversation row" in result.stderr
    result = runner.invoke(app, ["data", "validate", str(data), "--stage", "sftt"])
    assert result.exit_code == 2 and "unknown stage 'sftt' (did you mean 'sft'?)" in result.stderr


def test_registry_names_work(tmp_path, data, smol_dir):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": data.name}}))
    result = runner.invoke(app, ["data", "preview", "mine", "-r", str(tmp_path / "dataset_info.json"), "-n", "1"])
    assert result.exit_code == 0 and "Say 1" in result.stdout
