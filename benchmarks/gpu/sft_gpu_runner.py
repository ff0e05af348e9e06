"""One LoRA SFT configuration on the GPU in its own process; prints one JSON line.

    python benchmarks/gpu/sft_gpu_runner.py TOOL MODEL_DIR CHATS.jsonl OUT_DIR

TOOL: ``ft-packed``, ``ft-unpacked`` (ft train with its GPU defaults), ``trl-packed`` (TRL's
padding-free packing), ``trl-unpacked``, ``trl-defaults`` (SFTTrainer as it comes: gradient
checkpointing on, no packing); ``ft-packed-head`` is a diagnostic: ft packed with the CPU's
label-only LM head (``plain_head``) installed on the GPU too, and ``ft-packed-lora16`` ft packed
with the CPU's input-dtype LoRA branch (``lora_compute``) on the GPU too, ``ft-packed-compile`` ft packed
with each decoder layer compiled (``nn.Module.compile``: fewer kernel launches, where two profiled
steps of ``ft-packed-head`` on an H100 took 728 ms of host time against 298 ms of GPU time; not the
whole model, as ``torch_compile: true`` would: run on the CPU, TRL's fused head then recompiled for
each step's count of labels, and the last, smaller batch recompiled everything; not yet run on a
GPU), ``ft-packed-peftcast`` ft packed with PEFT's fp32 cast of every adapter's input put back
(what ft-models before 0.8.1 ran: two more copies per adapter in the forward pass and two in the
backward, and a bf16 copy of each adapter's input kept); a ``-liger`` suffix on a tool's
name puts liger-kernel (installed under $LIGER_SITE, default /tmp/liger) on the path, and both
are told to use it (``use_liger_kernel``: ft would not on its own, where the step fits). A ``+prof`` suffix also profiles
steps 3 and 4 with torch.profiler into ``profile_TOOL.txt`` beside OUT_DIR (and then the
steady rate counts from step 5); ``+first`` profiles the first step instead (what its warm-up
is made of) into ``profile_TOOL-first.txt``. bf16, LoRA r16 all-linear, batch 8 ($FT_GPU_BATCH), cutoff 1024, lr 1e-4, one
epoch. Reported: tokens trained (each trainer's own non-padding count), train_runtime, tokens/s,
peak GPU memory (torch.cuda.max_memory_allocated) and mean loss; and the training time split,
from the Trainer's callback hooks, into the first step (CUDA and kernel warm-up land there) and
the rest, with tokens/s over the rest (``steady_tokens_per_s``, counting the steps as equal in
tokens: exact for packed rows, close for unpacked ones).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # sft_train_runner's helpers

CUTOFF, RANK, LR = 1024, 16, 1e-4
BATCH = int(os.environ.get("FT_GPU_BATCH", "8"))  # memory_gpu.py varies it


def max_steps() -> dict:
    """``{"max_steps": N}`` where $FT_GPU_MAX_STEPS is set (sft_gpu.py's warm-up run), else nothing."""
    return {"max_steps": int(os.environ["FT_GPU_MAX_STEPS"])} if os.environ.get("FT_GPU_MAX_STEPS") else {}


def extra_train() -> dict:
    """More ``train:`` keys for ft's runs, as JSON in $FT_GPU_TRAIN (memory_gpu.py turns checkpointing off)."""
    return json.loads(os.environ.get("FT_GPU_TRAIN", "{}"))


def run_ft(model: Path, chats: Path, out: Path, packing: bool, liger: bool = False) -> list[dict]:
    import yaml

    from ft_train import run_training
    from ft_train.metrics import read_metrics

    config = {"model": {"source": str(model), "dtype": "bfloat16"},
              "data": {"train": [{"path": str(chats), "format": "sharegpt"}], "cutoff_len": CUTOFF, "packing": packing},
              "adapter": {"type": "lora", "r": RANK, "alpha": 2 * RANK, "dropout": 0.0},
              "train": {"output_dir": str(out), "num_train_epochs": 1, "per_device_train_batch_size": BATCH,
                        "learning_rate": LR, "logging_steps": 5, "save_strategy": "no", "seed": 0,
                        **({"use_liger_kernel": True} if liger else {}), **max_steps(), **extra_train()}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run_training(path, rerun="restart")
    return read_metrics(out / "metrics.jsonl")


def run_trl(model: Path, chats: Path, out: Path, packing: bool, checkpointing: bool, liger: bool) -> list[dict]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from sft_train_runner import chat_rows, keep_logs
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = chat_rows(chats)
    records: list[dict] = []
    args = SFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR,
                     logging_steps=5, save_strategy="no", seed=0, max_length=CUTOFF, packing=packing,
                     gradient_checkpointing=checkpointing, bf16=torch.cuda.is_available(), report_to="none",
                     use_liger_kernel=liger, **max_steps())
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model, dtype="bfloat16"), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(model),
                         peft_config=lora, callbacks=[keep_logs(records)])
    trainer.train()
    return records


PROFILED = {"prof": (2, 4), "first": (0, 1)}  # steps after which profiling starts and stops (0: at the start)


def time_steps(profile: Path | None = None, window: tuple[int, int] = (2, 4)) -> dict:
    """Note, after a device sync, when training begins, when its first step ends and when its last
    step ends (the Trainer's callback hooks, so saving and plotting after the loop stay out); the
    returned dict fills in as it trains. With ``profile``, the steps after ``window[0]`` up to
    ``window[1]`` run under torch.profiler, its tables go to that file, and "first" is the end of
    step ``window[1]``."""
    import time

    import torch
    from transformers.trainer_callback import CallbackHandler

    marks: dict = {"warm": window[1] if profile else 1}
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    begin, step_end = CallbackHandler.on_train_begin, CallbackHandler.on_step_end
    prof = profiler(profile) if profile else None

    def on_train_begin(self, args, state, control):
        sync()
        if prof and window[0] == 0 and state.max_steps >= window[1]:
            prof.send(None)
        marks["begin"] = time.perf_counter()
        return begin(self, args, state, control)

    def on_step_end(self, args, state, control):
        if prof and state.global_step in window and state.max_steps >= window[1]:  # a short run: no profile
            sync()
            prof.send(None)  # starts after step window[0], writes its tables after step window[1]
        if state.global_step in (marks["warm"], state.max_steps):
            sync()
            marks["first" if state.global_step == marks["warm"] else "last"] = time.perf_counter()
            marks["steps"] = state.global_step
        return step_end(self, args, state, control)

    CallbackHandler.on_train_begin, CallbackHandler.on_step_end = on_train_begin, on_step_end
    return marks


def profiler(path: Path):
    """A generator: the first ``send`` starts torch.profiler, the second stops it and writes the
    top operators by device time and by host time to ``path``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        yield
    table = prof.key_averages()
    path.write_text(table.table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=45)
                    + "\n\n" + table.table(sort_by="self_cpu_time_total", row_limit=25))
    yield


def split_runtime(marks: dict, tokens: float) -> dict:
    """The warm-up steps' seconds (the first, or up to the profiled window's end) against the rest's,
    and tokens/s over the rest."""
    warm = marks["warm"]
    if "last" not in marks or "first" not in marks or marks["steps"] <= warm:
        return {}
    rest, steps = marks["last"] - marks["first"], marks["steps"]
    return {"steps": steps, "warm_steps": warm, "first_step_s": marks["first"] - marks["begin"], "rest_s": rest,
            "steady_tokens_per_s": tokens * (steps - warm) / steps / rest}


def label_only_head_on_gpu() -> None:
    """``ft-packed-head``: the sft stage installs plain_head (not the CPU attention) on any device,
    with chunks sized for a GPU: 128 MB of fp32 logits rather than 32 MB (220 rows of the 151,936
    vocabulary; with the softmax and its bf16 copy about 0.34 GB at once, near TRL's 0.27 GB tile).
    Before ft-train 0.12.1 this ran the plain route on the GPU machines' transformers (5.17 slices
    logits by columns only): full fp32 logits of every labelled column, 29.8 GB at peak on an H100.
    From 0.12.1 the frozen head is skipped there too and only labelled rows are projected, with
    no Triton compile in the first step."""
    from ft_train.stages import label_logprobs, sft

    sft.on_cpu = lambda args: True
    sft.packed_attention.install = lambda model: None
    label_logprobs.CHUNK_BYTES = 1 << 27


def compile_decoder_layers() -> None:
    """``ft-packed-compile``: ft builds its model as usual, then each decoder layer is compiled in
    place (static shapes: every packed batch is BATCH x CUTOFF, but the last)."""
    from ft_models import decoder_layers
    from ft_train import model_setup

    apply = model_setup.apply_adapter

    def apply_then_compile(model, spec):
        model = apply(model, spec)
        for layer in decoder_layers(model):
            layer.compile()
        return model

    model_setup.apply_adapter = apply_then_compile


def peft_input_casts() -> None:
    """``ft-packed-peftcast``: ft's adapters keep PEFT's own cast of their input to fp32."""
    from ft_models import adapters

    adapters.skip_input_casts_under_autocast = lambda model: 0


def main() -> None:
    import torch

    tool, model, chats, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    name, _, flag = tool.partition("+")
    packing = "-packed" in name
    suffix = "-first" if flag == "first" else ""
    marks = time_steps(out.parent / f"profile_{name}{suffix}.txt" if flag in PROFILED else None,
                       PROFILED.get(flag, (2, 4)))
    if name == "ft-packed-head":
        label_only_head_on_gpu()
    if name == "ft-packed-compile":
        compile_decoder_layers()
    if name == "ft-packed-peftcast":
        peft_input_casts()
    if name == "ft-packed-lora16":
        from ft_train import model_setup

        model_setup._on_cpu = lambda args: True  # the condition under which ft installs lora_compute
    liger = name.endswith("-liger")
    if liger:
        sys.path.insert(0, os.environ.get("LIGER_SITE", "/tmp/liger"))
    if name.startswith("ft"):
        records = run_ft(model, chats, out, packing, liger)
    else:
        records = run_trl(model, chats, out, packing, checkpointing=name == "trl-defaults",
                          liger=liger)
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    tokens = max(r.get("num_tokens", 0) for r in records)
    losses = [r["loss"] for r in records if "loss" in r] or [r["train_loss"] for r in records if "train_loss" in r]
    print(json.dumps({"tool": tool, "tokens": tokens, "seconds": runtime, "tokens_per_s": tokens / runtime,
                      "mean_loss": sum(losses) / len(losses), **split_runtime(marks, tokens),
                      "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0,
                      "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}))


if __name__ == "__main__":
    main()
