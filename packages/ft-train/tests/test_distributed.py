"""Two CPU processes (torchrun, gloo) train one sft run: both end with the same adapter weights,
each step is logged once, and `ft train --nproc 2` runs the same way from the command line (saying
that the fsdp it was asked for runs as DDP on CPU processes)."""

import subprocess
import sys

import pytest
import yaml

from ft_train.metrics import read_metrics

pytestmark = pytest.mark.slow

EACH_RANK = """
import os, sys
from safetensors.torch import save_file
from transformers import Trainer
from ft_train.launch import main

train = Trainer.train
def train_and_dump(self, *a, **k):  # each rank writes its trainable weights after training
    out = train(self, *a, **k)
    state = {n: p.detach().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
    save_file(state, os.path.join(self.args.output_dir, f"rank{os.environ['RANK']}.safetensors"),
              metadata={"world_size": str(self.args.world_size)})
    return out
Trainer.train = train_and_dump
main(sys.argv[1:])
"""


def _config(tmp_path, tiny_chat_dir, steps):
    import json

    rows = [{"messages": [{"role": "user", "content": f"What is {a} plus {a}?"},
                          {"role": "assistant", "content": f"{a} plus {a} is {2 * a}."}]} for a in range(40)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"model": {"source": str(tiny_chat_dir), "dtype": "float32"},
              "data": {"train": ["train.jsonl"], "cutoff_len": 64},
              "adapter": {"type": "lora", "r": 4, "alpha": 8},
              "train": {"output_dir": str(tmp_path / "out"), "max_steps": steps, "per_device_train_batch_size": 2,
                        "learning_rate": 1e-2, "logging_steps": 1, "save_steps": 2, "seed": 0}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_two_processes_end_with_identical_adapters(tmp_path, tiny_chat_dir):
    from safetensors.torch import load_file

    path = _config(tmp_path, tiny_chat_dir, steps=3)
    script = tmp_path / "each_rank.py"
    script.write_text(EACH_RANK)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(script), str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    from safetensors import safe_open

    for r in (0, 1):  # one run of two processes, not two runs
        with safe_open(str(out / f"rank{r}.safetensors"), "pt") as f:
            assert f.metadata()["world_size"] == "2"
    ranks = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and ranks[0]
    for name in ranks[0]:
        assert (ranks[0][name] == ranks[1][name]).all(), name
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r] == [1, 2, 3]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert done.stdout.count("ft: 40 sft examples") == 1  # one process speaks


def test_ft_train_nproc_2(tmp_path, tiny_chat_dir):
    ft = str(__import__("pathlib").Path(sys.executable).parent / "ft")
    path = _config(tmp_path, tiny_chat_dir, steps=2)
    config = yaml.safe_load(path.read_text())
    config["train"].update(fsdp=True, fsdp_config={"version": 2})  # accelerate shards on accelerators only
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([ft, "train", str(path), "--nproc", "2"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ft: train.fsdp is set, but accelerate shards only on GPUs") == 1, done.stdout[-3000:]
    assert [r["step"] for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r] == [1, 2]
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
