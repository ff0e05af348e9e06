"""`ft stream split|generate|bench` on a tiny model that uses the real SmolLM2 tokenizer."""

import json

import pytest
from typer.testing import CliRunner

from ft_cli.app import app

runner = CliRunner()


def test_split_then_generate_gives_the_text_ft_chat_gives(tiny_chat_dir, tmp_path):
    out = tmp_path / "split"
    result = runner.invoke(app, ["stream", "split", str(tiny_chat_dir), str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_layers"] == 2
    files = {f["kind"]: f["bytes"] for f in manifest["files"]}
    streaming = str(files["rest"] + files["layer"])  # with no read-ahead, the smallest budget: every layer streams
    from ft_stream import LayerwiseModel

    assert LayerwiseModel(out, budget=streaming, prefetch=0).resident == set()
    args = ["--prompt", "Name three colours.", "--max-new-tokens", "12", "--repetition-penalty", "1.3"]
    chat = runner.invoke(app, ["chat", "--model", str(tiny_chat_dir), *args])
    for source in (str(out), str(tiny_chat_dir)):  # a split folder, or any model folder (split on the way)
        streamed = runner.invoke(app, ["stream", "generate", source, "--budget", streaming, "--prefetch", "0", *args])
        assert streamed.exit_code == 0, streamed.output
        assert streamed.stdout.strip() == chat.stdout.strip() != ""


def test_bench_reports_and_compares(tiny_chat_dir, tmp_path):
    result = runner.invoke(app, ["stream", "bench", str(tiny_chat_dir), "--prompt-tokens", "8", "--new-tokens", "4",
                                 "--compare"])
    assert result.exit_code == 0, result.output
    assert "streamed (0/2 layers resident): prefill" in result.stdout and "s/token over 4 tokens" in result.stdout
    assert "same tokens: yes" in result.stdout


def test_a_budget_below_one_layer_is_refused_with_the_smallest_workable_one(tiny_chat_dir):
    result = runner.invoke(app, ["stream", "generate", str(tiny_chat_dir), "--prompt", "hi", "--budget", "1KB"])
    assert result.exit_code == 2
    assert "error: budget 1.00 KB is too small: the smallest workable budget is" in result.stderr


@pytest.mark.slow
def test_stop_strings_end_the_answer_in_both_commands(smol_dir):
    args = ["--prompt", "What is the capital of France?", "--stop", "Paris"]
    chat = runner.invoke(app, ["chat", *args])
    streamed = runner.invoke(app, ["stream", "generate", *args, "--budget", "200MB"])
    assert chat.exit_code == streamed.exit_code == 0, streamed.output
    assert chat.stdout.strip() == streamed.stdout.strip() == "The capital of France is"


def test_chat_with_a_streamed_model_gives_ft_chats_text(tiny_chat_dir, smol_tokenizer, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ft_stream import LayerwiseModel, split

    config = AutoConfig.from_pretrained(tiny_chat_dir)
    config.num_hidden_layers = 4  # two more than the read-ahead working set: some layers stream
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "model")
    smol_tokenizer.save_pretrained(tmp_path / "model")
    out = split(tmp_path / "model", tmp_path / "split", progress=False)
    files = {f["kind"]: f["bytes"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    streaming = str(files["rest"] + 2 * files["layer"])
    assert LayerwiseModel(out, budget=streaming).resident == set()  # every layer streams at this budget
    args = ["--model", str(out), "--prompt", "Name three colours.", "--max-new-tokens", "12"]
    plain = runner.invoke(app, ["chat", *args[:1], str(tmp_path / "model"), *args[2:]])
    streamed = runner.invoke(app, ["chat", *args, "--stream-budget", streaming])
    assert streamed.exit_code == 0, streamed.output
    assert streamed.stdout.strip() == plain.stdout.strip() != ""


def test_chat_refuses_an_adapter_with_a_streamed_model(tiny_chat_dir, tmp_path):
    result = runner.invoke(app, ["chat", "--model", str(tiny_chat_dir), "--adapter", str(tmp_path), "--prompt", "hi",
                                 "--stream-budget", "1GB"])
    assert result.exit_code == 2 and "merge the adapter first (`ft export" in result.stderr
