"""Starter run configs: ``ft init STAGE`` writes a commented YAML for the stage and a small example
dataset beside it (made here, ours), and the pair trains as it is on the embedded SmolLM2 in a
few minutes on a CPU. Edit the model, the data and the numbers from there.

Example:
    >>> import tempfile
    >>> path = write_starter("dpo", tempfile.mkdtemp())
    >>> path.name, sorted(p.name for p in (path.parent / "data").iterdir())
    ('ft-dpo.yaml', ['dpo_pairs.jsonl'])
"""

from __future__ import annotations

import json
from pathlib import Path

from ft_core import FtError, did_you_mean
from ft_core.atomic import atomic_write_text

_ANIMALS = ["cat", "dog", "horse", "owl", "frog", "bee", "whale", "fox", "bear", "duck", "goat", "crab"]
_SOUNDS = ["meows", "barks", "neighs", "hoots", "croaks", "buzzes", "sings", "yips", "growls", "quacks", "bleats",
           "clicks"]


def _sums(n: int) -> list[tuple[str, str, str]]:
    """(question, right answer, wrong answer) about small sums, the same every time."""
    out = []
    for i in range(n):
        a, b = 2 + i % 9, 3 + (i * 7) % 11
        out.append((f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.", f"{a} plus {b} is {a + b + 1 + i % 3}."))
    return out


def _chats(n: int = 48) -> list[dict]:
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": right}]}
            for q, right, _ in _sums(n // 2)]
    rows += [{"messages": [{"role": "user", "content": f"What sound does a {animal} make?"},
                           {"role": "assistant", "content": f"A {animal} {sound}."}]}
             for animal, sound in zip(_ANIMALS * 2, _SOUNDS * 2, strict=True)][: n - len(rows)]
    return rows


def _pairs(n: int = 32) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": right}],
             "rejected": [{"role": "assistant", "content": wrong}]} for q, right, wrong in _sums(n)]


def _kto(n: int = 32) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": right if i % 2 else wrong}],
             "label": bool(i % 2)} for i, (q, right, wrong) in enumerate(_sums(n))]


def _text(n: int = 32) -> list[dict]:
    return [{"text": f"The {animal} {sound}. " + " ".join(f"{a} plus {b} is {a + b}." for a, b in [(i, i + 1), (i, 2)])}
            for i, (animal, sound) in enumerate(zip(_ANIMALS * 3, _SOUNDS * 3, strict=True))][:n]


def _prompts(n: int = 32) -> list[dict]:
    return [{"instruction": f"In one short sentence: what sound does a {animal} make?", "output": f"A {animal} {sound}."}
            for animal, sound in zip(_ANIMALS * 3, _SOUNDS * 3, strict=True)][:n]


# stage -> (data file, what it holds, rows, the train: keys of the stage, with their comments)
_PREFERENCE = "preference pairs (prompt, chosen, rejected)"
_ONLINE = ("  # sampled answers are scored by these reward functions (module:function) or reward-model folders\n"
           "  rewards: [ft_train.rewards:brevity, ft_train.rewards:no_repetition]\n"
           "  max_completion_length: 32\n")
STAGES: dict[str, tuple[str, str, object, str]] = {
    "pt": ("pt_text.jsonl", "plain text ({\"text\": ...})", _text, ""),
    "sft": ("sft_chats.jsonl", "chats (OpenAI messages)", _chats, ""),
    "rm": ("rm_pairs.jsonl", _PREFERENCE, _pairs, ""),
    "dpo": ("dpo_pairs.jsonl", _PREFERENCE, _pairs,
            "  beta: 0.1                  # how far from the reference model the policy may move\n"
            "  loss_type: sigmoid         # sigmoid (DPO), ipo, hinge, simpo; reference_free: true drops the reference\n"),
    "orpo": ("orpo_pairs.jsonl", _PREFERENCE, _pairs, "  beta: 0.1                  # weight of the odds-ratio term\n"),
    "kto": ("kto_examples.jsonl", "single answers marked good or bad (messages, label)", _kto, ""),
    "grpo": ("grpo_prompts.jsonl", "prompts (alpaca: instruction)", _prompts,
             _ONLINE + "  num_generations: 4          # answers sampled per prompt (the group)\n"),
    "rloo": ("rloo_prompts.jsonl", "prompts (alpaca: instruction)", _prompts,
             _ONLINE + "  num_generations: 4          # answers sampled per prompt\n"),
    "ppo": ("ppo_prompts.jsonl", "prompts (alpaca: instruction)", _prompts, _ONLINE),
}

_TEMPLATE = """\
# ft {stage}: a starter run on the embedded SmolLM2-135M-Instruct and {rows} example rows of
# {what}, written by `ft init {stage}`. Train it as it is:
#   ft train {yaml}
# then point model.source and data.train at your own, and tune the numbers.
model:
  source: smollm2-135m-instruct   # an alias, a folder, a .gguf file or a hub id
  dtype: auto                     # bf16 where the hardware has it, else float32
data:
  train:                          # paths relative to this file; formats are detected
    - data/{data}
  cutoff_len: 256                 # longer rows are cut (prompts keep their end)
adapter:
  type: lora                      # lora, dora, pissa, freeze or full; quantization: 4 for QLoRA (GPU)
  r: 16
  alpha: 32
  dropout: 0.0
train:
  stage: {stage}
  output_dir: outputs/{stage}_starter     # relative to the working directory; rerun to resume
  num_train_epochs: 1
  per_device_train_batch_size: 4
  learning_rate: {lr}
  lr_scheduler_type: cosine
  logging_steps: 2
  save_strategy: epoch
  seed: 0
{extra}"""


def write_starter(stage: str, folder: str | Path = ".", force: bool = False) -> Path:
    """Write ``ft-STAGE.yaml`` and ``data/<its example data>`` into ``folder``; the YAML's path.
    An existing file is kept (FtError) unless ``force``."""
    if stage not in STAGES:
        raise FtError(f"unknown stage '{stage}'{did_you_mean(stage, STAGES)}; stages: {', '.join(STAGES)}")
    data_name, what, make_rows, extra = STAGES[stage]
    folder = Path(folder)
    yaml_path, data_path = folder / f"ft-{stage}.yaml", folder / "data" / data_name
    for path in (yaml_path, data_path):
        if path.exists() and not force:
            raise FtError(f"{path} exists; pass --force to overwrite it, or choose another folder")
    rows = make_rows()
    lr = "1.0e-4" if stage in ("dpo", "orpo", "kto", "grpo", "rloo", "ppo") else "1.0e-3"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(data_path, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(yaml_path, _TEMPLATE.format(stage=stage, rows=len(rows), what=what, yaml=yaml_path.name,
                                                  data=data_name, lr=lr, extra=extra))
    return yaml_path
