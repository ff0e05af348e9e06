import json
import logging
from pathlib import Path

import pytest
import yaml

from ft_train import run_training
from ft_train.metrics import plot_loss, read_metrics

ROWS = [{"messages": [{"role": "user", "content": f"What is {a} plus {a}?"},
                      {"role": "assistant", "content": f"{a} plus {a} is {2 * a}."}]} for a in range(40)]


@pytest.fixture
def said(caplog):
    """What ft-train and ft-models logged since the last call (the CLI prints these lines as `ft: ...`)."""
    caplog.set_level(logging.INFO, logger="ft_train")
    caplog.set_level(logging.INFO, logger="ft_models")

    def read() -> str:
        text = caplog.text
        caplog.clear()
        return text

    return read


def write_config(tmp_path: Path, model_dir: Path, max_steps: int, adapter: str | dict = "lora", model: dict | None = None,
                 **data_options) -> Path:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = {
        "model": {"source": str(model_dir), "dtype": "float32", **(model or {})},
        "data": {"train": ["train.jsonl"], "cutoff_len": 64, **data_options},
        "adapter": {"type": adapter, "r": 4, "alpha": 8} if isinstance(adapter, str) else adapter,
        "train": {"output_dir": str(tmp_path / "out"), "max_steps": max_steps, "per_device_train_batch_size": 4,
                  "learning_rate": 1e-2, "logging_steps": 2, "save_steps": 3, "seed": 0},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_sft_lora_writes_a_complete_output_dir_and_resumes(tmp_path, tiny_chat_dir, said):
    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=6))
    out = tmp_path / "out"
    assert {"adapter", "metrics.jsonl", "loss.png", "run_config.yaml", "checkpoint-6"} <= {p.name for p in out.iterdir()}
    assert (result.weights_dir / "adapter_config.json").is_file()
    assert (result.weights_dir / "adapter_model.safetensors").is_file()
    assert (result.weights_dir / "chat_template.jinja").is_file()
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (result.weights_dir / "README.md").read_text()
    assert card.startswith(f"# {tiny_chat_dir}, sft with ft") and "- final loss: " in card and "40 sft examples" in card
    saved = yaml.safe_load((out / "run_config.yaml").read_text())
    assert saved["data"]["train"][0]["path"] == str(tmp_path / "train.jsonl")
    losses = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in losses] == [2, 4, 6]
    assert losses[-1]["loss"] < losses[0]["loss"]  # it learns
    assert "40 sft examples (0 truncated, 0 dropped" in said()

    # Running again with more steps resumes from checkpoint-6 and logs no step twice.
    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=8))
    assert "resuming from" in said()
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert steps == [2, 4, 6, 8]


@pytest.mark.slow
def test_full_fine_tuning_saves_the_model(tmp_path, tiny_chat_dir):
    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=2, adapter="full"))
    assert result.weights_dir.name == "model"
    assert (result.weights_dir / "model.safetensors").is_file() and (result.weights_dir / "config.json").is_file()


def test_plot_needs_logged_loss(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    assert plot_loss(metrics, tmp_path / "loss.png") is None
    metrics.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 2, "eval_loss": 1.7}\n')
    assert plot_loss(metrics, tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_packed_sft_trains_on_packed_rows(tmp_path, tiny_chat_dir, said, monkeypatch):
    from ft_data import SFTCollator
    from ft_train.stages import packed_attention

    seen, pieces = [], []
    collate = SFTCollator.__call__
    monkeypatch.setattr(SFTCollator, "__call__", lambda self, f: seen.append(collate(self, f)) or seen[-1])
    per_piece = packed_attention._PieceAttention.apply
    monkeypatch.setattr(packed_attention._PieceAttention, "apply", lambda *a: pieces.append(a[3].pieces) or per_piece(*a))
    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=4, packing=True, train_on="last", cutoff_len=128))
    out = said()
    assert "40 sft examples packed into " in out
    rows = int(out.split("packed into ")[1].split()[0])
    assert rows <= 20  # 40 conversations of under 64 tokens packed into rows of 128
    losses = [r["loss"] for r in read_metrics(result.metrics_file) if "loss" in r]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    # what reached the model: restarting position_ids and no attention mask (else examples would mix)
    batch = seen[0]
    assert "attention_mask" not in batch and (batch["position_ids"][:, 1:] == 0).any()
    # on the CPU, attention ran piece by piece: each example of the first batch one piece
    starts = [(row, col) for row, col in (batch["position_ids"] == 0).nonzero().tolist()]
    assert pieces and [(row, start) for row, start, _ in pieces[0]] == starts


@pytest.mark.slow
@pytest.mark.parametrize("cpu_kernels", [None, False])
def test_a_bf16_cpu_run_takes_the_fused_kernels_unless_told_not_to(tmp_path, tiny_chat_dir, said, monkeypatch, cpu_kernels):
    pytest.importorskip("numba", reason="the cpu-kernels extra (numba) is part of the dev install")
    from ft_train.kernels import label_softmax, rms_norm

    calls, heads = [], []
    fused = rms_norm._FusedRMSNorm.apply
    monkeypatch.setattr(rms_norm._FusedRMSNorm, "apply", lambda *a: calls.append(a[0].shape) or fused(*a))
    softmax_rows = label_softmax.softmax_rows
    monkeypatch.setattr(label_softmax, "softmax_rows", lambda *a: heads.append(a[0].shape) or softmax_rows(*a))
    config = write_config(tmp_path, tiny_chat_dir, max_steps=2, model={"dtype": "bfloat16"})
    if cpu_kernels is not None:
        written = yaml.safe_load(config.read_text())
        written["train"]["cpu_kernels"] = cpu_kernels
        config.write_text(yaml.safe_dump(written))
    result = run_training(config)
    losses = [r["loss"] for r in read_metrics(result.metrics_file) if "loss" in r]
    assert losses and all(loss > 0 for loss in losses)
    if cpu_kernels is None:  # two norms a layer and the final one, in every forward; the head's softmax
        assert "fused CPU kernels (numba): 5 rms_norm, 1 label_softmax" in said() and len(calls) >= 2 * 5 and heads
    else:
        assert "fused CPU kernels" not in said() and not calls and not heads


@pytest.mark.parametrize(("packing", "dtype"), [(False, "bfloat16"), (True, "bfloat16"), (True, "float32")])
def test_bf16_autocast_on_the_cpu_trains(tmp_path, tiny_chat_dir, packing, dtype):
    """``bf16: true`` (in nearly every LLaMA-Factory YAML) on a CPU: accelerate hands the forward's
    outputs back in fp32, so the bypassed LM head's hidden states reached ft's bf16 head as fp32
    and the step failed ("expected m1 and m2 to have the same dtype"). With fp32 weights, packed
    attention got fp32 q/k and a bf16 v, and its backward failed ("mat1 and mat2 must have the
    same dtype")."""
    config = write_config(tmp_path, tiny_chat_dir, max_steps=2, model={"dtype": dtype}, packing=packing)
    written = yaml.safe_load(config.read_text())
    written["train"]["bf16"] = True
    config.write_text(yaml.safe_dump(written))
    result = run_training(config)
    losses = [r["loss"] for r in read_metrics(result.metrics_file) if "loss" in r]
    assert len(losses) == 1 and 0 < losses[0] < 20


@pytest.mark.slow
def test_freeze_tuning_trains_only_the_last_layer(tmp_path, tiny_chat_dir, said):
    from safetensors.torch import load_file

    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=2,
                                       adapter={"type": "freeze", "trainable_layers": 1}))
    assert said().count("attention sdpa (auto: not flash_attention_2") == 1  # ft-models says it; it was said twice
    before, after = load_file(tiny_chat_dir / "model.safetensors"), load_file(result.weights_dir / "model.safetensors")
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed and all(k.startswith("model.layers.1.") for k in changed)


@pytest.mark.slow
def test_qlora_with_loraplus_trains_from_the_yaml(tmp_path, tiny_chat_dir, said):
    pytest.importorskip("bitsandbytes")
    adapter = {"type": "lora", "r": 4, "alpha": 8, "use_rslora": True, "loraplus_ratio": 8}
    result = run_training(write_config(tmp_path, tiny_chat_dir, max_steps=4, adapter=adapter,
                                       model={"quantization": {"bits": 4}}))
    config = json.loads((result.weights_dir / "adapter_config.json").read_text())
    assert config["use_rslora"] and config["r"] == 4
    losses = [r["loss"] for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_pissa_adapter_is_saved_for_the_original_base(tmp_path, tiny_chat_dir):
    """PiSSA trains on residual base weights. The final adapter is converted so that, loaded on the
    untouched base, it gives the trained model's logits; the trained model is rebuilt here the way a
    resume rebuilds it (same seed, same PiSSA start) plus the last checkpoint's adapter weights."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import set_seed

    from ft_models import apply_adapter, load_adapter, load_model
    from ft_train.config import load_run_config
    from ft_train.model_setup import adapter_spec

    path = write_config(tmp_path, tiny_chat_dir, max_steps=3, adapter={"type": "lora", "r": 4, "alpha": 4, "init": "pissa"})
    result = run_training(path)
    assert json.loads((result.weights_dir / "adapter_config.json").read_text())["r"] == 8  # converted: rank 2r
    model = load_model(str(tiny_chat_dir), dtype="float32")
    set_seed(0)
    trained = apply_adapter(model, adapter_spec(load_run_config(path)))
    set_peft_model_state_dict(trained, load_file(tmp_path / "out" / "checkpoint-3" / "adapter_model.safetensors"))
    converted = load_adapter(load_model(str(tiny_chat_dir), dtype="float32"), str(result.weights_dir))
    base = load_model(str(tiny_chat_dir), dtype="float32")
    ids = torch.randint(0, 1000, (1, 10))
    with torch.no_grad():
        expected = trained.eval()(ids).logits
        assert not torch.allclose(expected, base(ids).logits, atol=1e-4)  # training moved it
        torch.testing.assert_close(converted(ids).logits, expected, atol=1e-4, rtol=1e-4)


KILLED_WHILE_SAVING = """
import os, signal, sys
from transformers import Trainer
from ft_train import run_training

save_rng = Trainer._save_rng_state
def killed(self, output_dir):
    if self.state.global_step == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # the checkpoint has weights and optimizer, no state yet
    return save_rng(self, output_dir)
Trainer._save_rng_state = killed
run_training(sys.argv[1])
"""


def _losses(out: Path) -> dict[int, float]:
    records = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    steps = [r["step"] for r in records]
    assert len(steps) == len(set(steps)), f"a step logged twice: {steps}"
    return {r["step"]: r["loss"] for r in records}


@pytest.mark.slow
def test_a_run_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(tmp_path, tiny_chat_dir, said):
    import subprocess
    import sys

    from ft_train.checkpoints import MARKER

    def config(name):
        (tmp_path / name).mkdir()
        path = write_config(tmp_path / name, tiny_chat_dir, max_steps=6)
        raw = yaml.safe_load(path.read_text())
        raw["train"].update(save_steps=2, logging_steps=1)
        path.write_text(yaml.safe_dump(raw))
        return path

    run_training(config("whole"))
    expected = _losses(tmp_path / "whole" / "out")
    killed = config("killed")
    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(killed), "4"], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr[-2000:]
    out = tmp_path / "killed" / "out"
    assert (out / "checkpoint-4").is_dir() and not (out / "checkpoint-4" / MARKER).exists()
    assert (out / "checkpoint-2" / MARKER).is_file()
    said()

    run_training(killed)
    text = said()
    assert "checkpoint-4 was cut off while being written; removing it" in text
    assert "resuming from checkpoint-2" in text
    resumed = _losses(out)
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):  # the same losses as the uninterrupted run (same seed; float32 on CPU)
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step


@pytest.mark.slow
def test_a_rerun_with_changed_settings_is_refused_unless_told(tmp_path, tiny_chat_dir, said):
    from ft_core import FtError

    path = write_config(tmp_path, tiny_chat_dir, max_steps=2)
    run_training(path)
    out = tmp_path / "out"
    recorded = (out / "run_config.yaml").read_text()
    raw = yaml.safe_load(path.read_text())
    raw["train"]["learning_rate"] = 0.5
    raw["data"]["cutoff_len"] = 60
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(FtError, match=r"run.yaml: .*out holds a run trained with other settings \(data.cutoff_len: 64 -> 60; "
                                      r"train.learning_rate: 0.01 -> 0.5\); rerun with --resume .* or --restart"):
        run_training(path)
    assert (out / "run_config.yaml").read_text() == recorded  # nothing rewritten
    older = yaml.safe_load(recorded)  # a run recorded by an older ft, without a key added since
    del older["data"]["val_size"]
    (out / "run_config.yaml").write_text(yaml.safe_dump(older))
    with pytest.raises(FtError) as info:
        run_training(path)
    assert "val_size" not in str(info.value) and "data.cutoff_len: 64 -> 60" in str(info.value)
    (out / "run_config.yaml").write_text(recorded)
    raw["train"]["max_steps"] = 4  # the step budget alone may change, with --resume the rest too
    path.write_text(yaml.safe_dump(raw))
    run_training(path, rerun="resume")
    assert "resuming from checkpoint-2" in said()
    assert yaml.safe_load((out / "run_config.yaml").read_text())["train"]["learning_rate"] == 0.5
    (out / "mine.txt").write_text("kept")
    run_training(path, rerun="restart")
    assert "resuming" not in said()
    assert sorted(_losses(out)) == [2, 4] and (out / "mine.txt").is_file()


@pytest.mark.slow
def test_packed_runs_count_the_tokens_they_train_on(tmp_path, tiny_chat_dir, monkeypatch):
    """num_tokens in metrics.jsonl is every non-padding token of the packed rows trained on (TRL
    alone counted one row's padded width per step)."""
    from ft_data import SFTCollator

    batches = []
    collate = SFTCollator.__call__
    monkeypatch.setattr(SFTCollator, "__call__",
                        lambda self, f: batches.append(sum(len(r["input_ids"]) for r in f)) or collate(self, f))
    run_training(write_config(tmp_path, tiny_chat_dir, max_steps=2, packing=True, cutoff_len=128))
    logged = [r["num_tokens"] for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "num_tokens" in r]
    assert logged == [batches[0] + batches[1]]  # logging_steps 2: one record, after the two batches
    assert logged[0] > 128 * 1.5  # several packed rows per batch, not one row's width
