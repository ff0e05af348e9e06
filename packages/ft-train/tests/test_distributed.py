"""Two CPU processes (torchrun, gloo) train one sft run: both end with the same adapter weights,
each step is logged once, and the fsdp the run asked for is said to run as DDP on CPU processes.
Under DeepSpeed ZeRO-2 and ZeRO-3 (its CPU accelerator over gloo), started by `ft train --nproc 2`,
the same run trains the adapter DDP trains."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ft_train.metrics import read_metrics

pytestmark = pytest.mark.slow
# DeepSpeed is an optional engine (the dev install builds it against its torch); the venvs of
# scripts/compat.py do not carry it, and these tests say so there instead of failing
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="DeepSpeed is not installed here (the dev install has it)")

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


def _config(tmp_path, tiny_chat_dir, steps, **train):
    import json

    rows = [{"messages": [{"role": "user", "content": f"What is {a} plus {a}?"},
                          {"role": "assistant", "content": f"{a} plus {a} is {2 * a}."}]} for a in range(40)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"model": {"source": str(tiny_chat_dir), "dtype": "float32"},
              "data": {"train": ["train.jsonl"], "cutoff_len": 64},
              "adapter": {"type": "lora", "r": 4, "alpha": 8},
              "train": {"output_dir": str(tmp_path / "out"), "max_steps": steps, "per_device_train_batch_size": 2,
                        "learning_rate": 1e-2, "logging_steps": 1, "save_steps": 2, "seed": 0, **train}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


FT = str(Path(sys.executable).parent / "ft")


def _losses(out):
    return [(r["step"], r["loss"]) for r in read_metrics(out / "metrics.jsonl") if "loss" in r]


def _parameters_line(stdout):
    return next(line for line in stdout.splitlines() if line.startswith("ft: training ") and "parameters" in line)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_chat_dir):
    """Two processes under torchrun, 3 steps, of a config asking for fsdp (CPU processes run it as
    DDP); each rank writes its trainable weights after training."""
    tmp = tmp_path_factory.mktemp("ddp")
    path = _config(tmp, tiny_chat_dir, steps=3, fsdp=True, fsdp_config={"version": 2})
    script = tmp / "each_rank.py"
    script.write_text(EACH_RANK)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(script), str(path)],
                          capture_output=True, text=True, timeout=600)
    return tmp / "out", done


def test_two_processes_end_with_identical_adapters(ddp_run):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out, done = ddp_run
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):  # one run of two processes, not two runs
        with safe_open(str(out / f"rank{r}.safetensors"), "pt") as f:
            assert f.metadata()["world_size"] == "2"
    ranks = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and ranks[0]
    for name in ranks[0]:
        assert (ranks[0][name] == ranks[1][name]).all(), name
    assert [step for step, _ in _losses(out)] == [1, 2, 3]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert done.stdout.count("ft: 40 sft examples") == 1  # one process speaks
    assert done.stdout.count("ft: train.fsdp is set, but accelerate shards only on GPUs") == 1, done.stdout[-3000:]


@needs_deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_cpu_processes_trains_the_adapter_ddp_trains(tmp_path, tiny_chat_dir, ddp_run, stage):
    """The same run under ZeRO-2/3 (a two-key config: ft fills in the batch keys): the same losses
    and the same adapter as DDP, DeepSpeed's own checkpoints, and under ZeRO-3 (parameters
    partitioned while loading) the whole parameter count and a resume from its checkpoint."""
    from safetensors.torch import load_file

    ddp_out, ddp = ddp_run
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    path = _config(tmp_path, tiny_chat_dir, steps=3, deepspeed={"zero_optimization": {"stage": stage}})
    done = subprocess.run([FT, "train", str(path), "--nproc", "2"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]  # `ft train --nproc` starts torchrun
    out = tmp_path / "out"
    assert "train.deepspeed: from the train: keys" in done.stdout and "accelerate shards only" not in done.stdout
    assert (out / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's engine saved it: it ran
    assert _parameters_line(done.stdout) == _parameters_line(ddp.stdout)
    for (step, loss), (ddp_step, ddp_loss) in zip(_losses(out), _losses(ddp_out), strict=True):
        assert step == ddp_step and loss == pytest.approx(ddp_loss, rel=1e-5)
    ours, theirs = (load_file(o / "adapter" / "adapter_model.safetensors") for o in (out, ddp_out))
    assert ours.keys() == theirs.keys()
    assert max((ours[k] - theirs[k]).abs().max().item() for k in ours) < 1e-5
    if stage == 3:
        config = yaml.safe_load(path.read_text())
        config["train"]["max_steps"] = 4  # a larger step budget resumes
        path.write_text(yaml.safe_dump(config))
        done = subprocess.run([FT, "train", str(path), "--nproc", "2"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "ft: resuming from checkpoint-3" in done.stdout
        assert [step for step, _ in _losses(out)] == [1, 2, 3, 4]


@needs_deepspeed
def test_deepspeed_without_a_launcher_is_refused_before_anything_loads(tmp_path, tiny_chat_dir):
    path = _config(tmp_path, tiny_chat_dir, steps=2, deepspeed={"zero_optimization": {"stage": 2}})
    done = subprocess.run([FT, "train", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "train.deepspeed runs in processes a launcher starts: `ft train CONFIG --nproc N`" in done.stderr
    assert not (tmp_path / "out").exists()
