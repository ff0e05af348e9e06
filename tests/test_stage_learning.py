"""Every stage learns on the embedded SmolLM2 (real weights, LoRA, short CPU runs): held-out
perplexity, preference accuracy and margins measured before and after, rule-based rewards that
rise. The tiny-model tests in ft-train check the mechanics; these check the learning."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from ft_train import run_training
from ft_train.metrics import read_metrics

pytestmark = pytest.mark.slow

TOWNS = ["Varel", "Oskin", "Brume", "Talvik", "Morrow", "Quill", "Hesk", "Dunmere", "Pellin", "Ardra", "Sorrel",
         "Vantry", "Elm Hollow", "Cask", "Wendle", "Orlo", "Fenwick", "Iselby", "Kettering", "Lisk"]
TRADES = ["copper", "salt", "wool", "amber", "timber", "glass", "cheese", "rope", "tin", "honey"]
RIVERS = ["Osk", "Lune", "Dray", "Merrow", "Tamsin"]


def gazetteer(rng: random.Random, towns: list[str]) -> list[dict]:
    """Plain-text entries in one fixed house style: learnable, so held-out entries get likelier."""
    return [{"text": f"{town} is a market town on the river {rng.choice(RIVERS)}. Its people trade in "
                     f"{rng.choice(TRADES)} and {rng.choice(TRADES)}. The town holds a fair every "
                     f"{rng.choice(['spring', 'summer', 'autumn', 'winter'])}, and its bridge has "
                     f"{rng.randint(2, 9)} arches."} for town in towns]


def sum_pairs(numbers: range) -> list[dict]:
    """chosen: the sum, stated; rejected: a refusal. A preference any instruct model can learn."""
    return [{"prompt": [{"role": "user", "content": f"What is {a} plus {a + 3}?"}],
             "chosen": [{"role": "assistant", "content": f"{a} plus {a + 3} is {2 * a + 3}."}],
             "rejected": [{"role": "assistant", "content": "I cannot help with that request."}]} for a in numbers]


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def train(tmp_path: Path, model_dir: Path, stage: str, rows: list[dict], eval_rows: list[dict] | None = None,
          *, steps: int, cutoff: int = 96, lr: float = 1e-3, batch: int = 4, **options) -> list[dict]:
    """One short LoRA run of ``stage``; its metrics.jsonl rows (evaluated at the start when there
    are held-out rows, and at the end)."""
    data = {"train": [write_rows(tmp_path / "train.jsonl", rows)], "cutoff_len": cutoff}
    if eval_rows:
        data["eval"] = [write_rows(tmp_path / "eval.jsonl", eval_rows)]
        options.setdefault("eval_on_start", True)
    config = {"model": {"source": str(model_dir), "dtype": "float32"}, "data": data,
              "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
              "train": {"stage": stage, "output_dir": str(tmp_path / "out"), "max_steps": steps,
                        "per_device_train_batch_size": batch, "learning_rate": lr, "logging_steps": 1,
                        "save_strategy": "no", "seed": 0, **options}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    run_training(tmp_path / "run.yaml")
    return read_metrics(tmp_path / "out" / "metrics.jsonl")


def series(records: list[dict], key: str) -> list[float]:
    return [r[key] for r in records if key in r]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_pt_lowers_held_out_perplexity(tmp_path, smol_dir):
    rng = random.Random(0)
    perplexity = series(train(tmp_path, smol_dir, "pt", gazetteer(rng, TOWNS[:16]), gazetteer(rng, TOWNS[16:]),
                              steps=12), "eval_perplexity")
    print(f"pt held-out perplexity {perplexity[0]:.2f} -> {perplexity[-1]:.2f}")
    assert len(perplexity) >= 2 and perplexity[-1] < 0.7 * perplexity[0]


def test_dpo_raises_held_out_accuracy_and_margin(tmp_path, smol_dir):
    records = train(tmp_path, smol_dir, "dpo", sum_pairs(range(2, 34)), sum_pairs(range(40, 56)), steps=8, beta=0.1)
    accuracy, margin = series(records, "eval_rewards/accuracies"), series(records, "eval_rewards/margins")
    print(f"dpo held-out accuracy {accuracy[0]:.2f} -> {accuracy[-1]:.2f}, margin {margin[0]:.3f} -> {margin[-1]:.3f}")
    assert accuracy[-1] >= 0.9 and accuracy[-1] > accuracy[0]
    assert margin[-1] > margin[0] + 1.0


def test_reward_model_beats_chance_on_held_out_pairs(tmp_path, smol_dir):
    records = train(tmp_path, smol_dir, "rm", sum_pairs(range(2, 34)), sum_pairs(range(40, 56)), steps=10)
    accuracy = series(records, "eval_accuracy")
    print(f"rm held-out accuracy {accuracy[0]:.2f} -> {accuracy[-1]:.2f}")
    assert accuracy[-1] >= 0.9  # 16 held-out pairs: chance is 0.5


@pytest.mark.parametrize("stage", ["kto", "orpo"])
def test_kto_and_orpo_losses_fall(tmp_path, smol_dir, stage):
    pairs = sum_pairs(range(2, 34))
    if stage == "kto":
        rows = [{"messages": p["prompt"] + p[side], "label": side == "chosen"}
                for p in pairs for side in ("chosen", "rejected")]
    else:
        rows = pairs
    losses = series(train(tmp_path, smol_dir, stage, rows, steps=8, beta=0.1), "loss")
    print(f"{stage} loss {losses[:2]} ... {losses[-2:]}")
    assert mean(losses[-2:]) < 0.8 * mean(losses[:2])


QUESTIONS = ["What is the color of grass?", "How many legs does a cat have?", "What do cows drink?",
             "What is the capital of Italy?", "What is two plus two?", "Which animal barks?",
             "What is ice made of?", "What color is the sun?"]


@pytest.mark.parametrize("stage", ["grpo", "rloo", "ppo"])
def test_online_stages_raise_a_rule_based_reward(tmp_path, smol_dir, stage):
    """brevity: 1 for an empty answer down to 0 at 200 characters; the instruct model starts
    with long answers, so shorter ones are the signal."""
    rows = [{"instruction": q, "output": ""} for q in QUESTIONS]
    options = {"rewards": ["ft_train.rewards:brevity"], "max_completion_length": 32}
    if stage != "ppo":
        options.update(num_generations=4)
    rewards = series(train(tmp_path, smol_dir, stage, rows, steps=8, batch=4, lr=2e-3, **options), "reward")
    print(f"{stage} mean reward {rewards}")
    assert mean(rewards[-3:]) > mean(rewards[:3]) + 0.1
