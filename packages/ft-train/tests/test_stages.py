"""Every stage trains from the YAML on a tiny model and learns a consistent signal: pt, rm, dpo
(TRL's, and the reference-free losses), kto, orpo; resume after SIGKILL; LoRA+'s optimizer."""

import json
import math
import types
from pathlib import Path

import pytest
import yaml

from ft_core import FtError
from ft_train import run_training
from ft_train.metrics import read_metrics

pytestmark = pytest.mark.slow

# The same preference on every row: answer "yes", never "no". Learnable by a random tiny model.
PAIRS = [{"prompt": [{"role": "user", "content": f"Question {i}: is {i} a number?"}],
          "chosen": [{"role": "assistant", "content": "yes it is"}],
          "rejected": [{"role": "assistant", "content": "no it is"}]} for i in range(32)]
KTO = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                     {"role": "assistant", "content": "yes it is" if i % 2 else "no never"}], "label": bool(i % 2)}
       for i in range(32)]
TEXT = [{"text": "the quick brown fox jumps over the lazy dog. " * 8} for _ in range(16)]


def stage_config(tmp_path: Path, model_dir: Path, stage: str, rows: list[dict], steps: int = 8,
                 data: dict | None = None, **train) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"model": {"source": str(model_dir), "dtype": "float32"},
              "data": {"train": ["d.jsonl"], "cutoff_len": 64, **(data or {})},
              "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
              "train": {"stage": stage, "output_dir": str(tmp_path / "out"), "max_steps": steps,
                        "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 2, "seed": 0,
                        **train}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "run.yaml"


def run_stage(tmp_path: Path, model_dir: Path, stage: str, rows: list[dict], **options) -> list[dict]:
    run_training(stage_config(tmp_path, model_dir, stage, rows, **options))
    return read_metrics(tmp_path / "out" / "metrics.jsonl")


def series(records: list[dict], key: str) -> list[float]:
    return [r[key] for r in records if key in r]


def test_pt_lowers_the_loss_on_its_text(tmp_path, tiny_chat_dir):
    losses = series(run_stage(tmp_path, tiny_chat_dir, "pt", TEXT), "loss")
    # the random tiny model starts where each transformers initializes it: from 10.81 the loss fell
    # 0.25 on 5.24, from 10.58 0.19 on 5.0.0 (the declared floor)
    assert len(losses) == 4 and losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.15


@pytest.mark.parametrize("train", [{}, {"loss_type": "ipo"}, {"loss_type": "simpo", "beta": 2.0},
                                   {"reference_free": True}], ids=["sigmoid", "ipo", "simpo", "reference-free"])
def test_dpo_widens_the_reward_margin(tmp_path, tiny_chat_dir, train):
    records = run_stage(tmp_path, tiny_chat_dir, "dpo", PAIRS, **train)
    margins, accuracies = series(records, "rewards/margins"), series(records, "rewards/accuracies")
    assert len(margins) == 4 and margins[-1] > margins[0] and margins[-1] > 0
    assert accuracies[-1] == 1.0
    assert (tmp_path / "out" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("stage,rows", [("dpo", PAIRS), ("rm", PAIRS)])
def test_bf16_autocast_on_the_cpu_trains_every_preference_stage(tmp_path, tiny_chat_dir, stage, rows):
    """``bf16: true`` (LLaMA-Factory YAMLs carry it) on a CPU, on a bf16 model: accelerate hands the
    forward's outputs back in fp32, which ft's bf16 CPU head once refused."""
    config = stage_config(tmp_path, tiny_chat_dir, stage, rows, steps=2, bf16=True)
    written = yaml.safe_load(config.read_text())
    written["model"]["dtype"] = "bfloat16"
    config.write_text(yaml.safe_dump(written))
    run_training(config)
    losses = series(read_metrics(tmp_path / "out" / "metrics.jsonl"), "loss")
    assert len(losses) == 1 and 0 < losses[0] < 20


def test_padding_free_dpo_logs_the_padded_runs_losses_and_rewards(tmp_path, tiny_chat_dir):
    """Mixed-length pairs (prompts of 1-24 words): ft's padding-free forwards against TRL's padded
    ones, step by step (float32; equal within rel 1e-4)."""
    pairs = [{"prompt": [{"role": "user", "content": "word " * (1 + 7 * i % 24) + "?"}],
              "chosen": [{"role": "assistant", "content": "yes " * (1 + i % 5)}],
              "rejected": [{"role": "assistant", "content": "no"}]} for i in range(16)]
    runs = {packed: run_stage(tmp_path / str(packed), tiny_chat_dir, "dpo", pairs, steps=4, logging_steps=1,
                              padding_free=packed) for packed in (True, False)}
    for key in ("loss", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert series(runs[True], key) == pytest.approx(series(runs[False], key), rel=1e-4), key


def test_orpo_learns_the_preference_and_the_answer(tmp_path, tiny_chat_dir):
    records = run_stage(tmp_path, tiny_chat_dir, "orpo", PAIRS, beta=0.5)
    losses, nll = series(records, "loss"), series(records, "nll_loss")
    assert losses[-1] < losses[0] and nll[-1] < nll[0]
    assert series(records, "rewards/margins")[-1] > 0


def test_reward_model_ranks_chosen_above_rejected(tmp_path, tiny_chat_dir):
    from safetensors import safe_open

    records = run_stage(tmp_path, tiny_chat_dir, "rm", PAIRS, steps=10)
    assert series(records, "accuracy")[-1] == 1.0 and series(records, "margin")[-1] > series(records, "margin")[0]
    adapter = tmp_path / "out" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        assert any("score" in key for key in f.keys())  # the trained score head is saved with the adapter


def test_kto_loss_falls(tmp_path, tiny_chat_dir):
    records = run_stage(tmp_path, tiny_chat_dir, "kto", KTO)
    losses = series(records, "loss")
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert series(records, "rewards/margins")[-1] > 0


def test_an_unknown_stage_or_loss_is_named(tmp_path, tiny_chat_dir):
    with pytest.raises(FtError, match=r"train.stage: unknown stage 'dpoo' \(did you mean 'dpo'\?\)"):
        run_stage(tmp_path, tiny_chat_dir, "dpoo", PAIRS)
    with pytest.raises(FtError, match="loss_type must be one of orpo, simpo, sigmoid, ipo, hinge"):
        run_stage(tmp_path, tiny_chat_dir, "orpo", PAIRS, loss_type="orpoo")


def test_held_out_rows_report_eval_loss_and_perplexity(tmp_path, tiny_chat_dir):
    import math

    records = run_stage(tmp_path, tiny_chat_dir, "pt", TEXT, data={"val_size": 0.25}, save_steps=4)
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in evals] == [4, 8, 8]  # at each save, and once at the end
    assert all(r["eval_perplexity"] == pytest.approx(math.exp(r["eval_loss"])) for r in evals)
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]


def test_preference_eval_files_report_reward_metrics(tmp_path, tiny_chat_dir):
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in PAIRS[:8]))
    records = run_stage(tmp_path, tiny_chat_dir, "dpo", PAIRS[8:], data={"eval": ["eval.jsonl"]}, loss_type="simpo",
                        beta=2.0)
    final = [r for r in records if "eval_loss" in r][-1]
    assert final["eval_rewards/accuracies"] == 1.0 and final["eval_rewards/margins"] > 0


PROMPTS = [{"instruction": f"Tell me something {i}", "output": "ok"} for i in range(16)]


@pytest.mark.parametrize("stage", ["grpo", "rloo"])
def test_online_stages_score_sampled_completions_with_named_rewards(tmp_path, tiny_chat_dir, monkeypatch, stage):
    (tmp_path / "my_rewards.py").write_text(
        "def even_tokens(prompts, completions, completion_ids, **kwargs):\n"
        "    return [sum(t % 2 == 0 for t in ids) / max(1, len(ids)) for ids in completion_ids]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    records = run_stage(tmp_path, tiny_chat_dir, stage, PROMPTS, steps=4, num_generations=4, max_completion_length=8,
                        rewards=["my_rewards:even_tokens", "ft_train.rewards:no_repetition"])
    rewards = series(records, "reward")
    assert len(rewards) == 2 and all(0 <= r <= 2 for r in rewards)
    assert series(records, "rewards/even_tokens/mean") and series(records, "completions/mean_length")[0] == 8
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()


def test_rewards_are_named_when_they_cannot_load(tmp_path, tiny_chat_dir):
    with pytest.raises(FtError, match="rewards: name at least one reward"):
        run_stage(tmp_path, tiny_chat_dir, "grpo", PROMPTS, num_generations=4)
    with pytest.raises(FtError, match=r"'ft_train.rewards' has no function 'brevty' \(did you mean 'brevity'\?\)"):
        run_stage(tmp_path, tiny_chat_dir, "grpo", PROMPTS, num_generations=4, rewards=["ft_train.rewards:brevty"])
    with pytest.raises(FtError, match="cannot import 'no_such_module'"):
        run_stage(tmp_path, tiny_chat_dir, "grpo", PROMPTS, num_generations=4, rewards=["no_such_module:f"])
    with pytest.raises(FtError, match=r"rewards: no folder saves/rm \(a relative path is taken from the working directory"):
        run_stage(tmp_path, tiny_chat_dir, "ppo", PROMPTS, rewards=["saves/rm"])


KILLED_AFTER_SAVE = """
import os, signal, sys
from ft_train.checkpoints import CheckpointMarker
from ft_train import run_training

mark = CheckpointMarker.on_save
def killed(self, args, state, control, **kwargs):
    mark(self, args, state, control, **kwargs)
    if state.global_step == 4:
        os.kill(os.getpid(), signal.SIGKILL)
CheckpointMarker.on_save = killed
run_training(sys.argv[1])
"""
CHATS = [{"messages": [{"role": "user", "content": f"What is {a} plus {a}?"},
                       {"role": "assistant", "content": f"{a} plus {a} is {2 * a}."}]} for a in range(40)]


PPO_OPTIONS = {"rewards": ["ft_train.rewards:no_repetition"], "max_completion_length": 8}
# the KL coefficient adapted (toward a KL no batch meets: x0.8 or x1.2 a step, as 4 samples are the
# horizon), scores normalised by running moments, rewards whitened: state a resume must carry over
PPO_ADAPTIVE = {**PPO_OPTIONS, "kl_target": 1e-6, "kl_horizon": 4, "score_norm": True, "whiten_rewards": True}


@pytest.mark.parametrize("stage, rows, options", [("sft", CHATS, {}), ("dpo", PAIRS, {}), ("ppo", PROMPTS, PPO_ADAPTIVE)],
                         ids=["sft", "dpo", "ppo"])
def test_a_run_killed_after_a_checkpoint_resumes_with_the_same_losses(tmp_path, tiny_chat_dir, stage, rows, options):
    """SIGKILL right after checkpoint-4; the rerun of the same command continues from it and logs
    steps 5-6 with the losses of an uninterrupted run (same seed; equal within rel 1e-5), each once."""
    import subprocess
    import sys

    whole = run_stage(tmp_path / "whole", tiny_chat_dir, stage, rows, steps=6, logging_steps=1, save_steps=2, **options)
    config = stage_config(tmp_path / "killed", tiny_chat_dir, stage, rows, steps=6, logging_steps=1, save_steps=2,
                          **options)
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_SAVE, str(config)], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "killed" / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    run_training(config)
    resumed = read_metrics(tmp_path / "killed" / "out" / "metrics.jsonl")
    steps = [r["step"] for r in resumed if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]
    for got, want in zip(series(resumed, "loss"), series(whole, "loss"), strict=True):
        assert got == pytest.approx(want, rel=1e-5)
    if stage == "ppo":
        coefs = series(whole, "kl_coef")
        assert series(resumed, "kl_coef") == pytest.approx(coefs, rel=1e-9)
        # step 1's policy is the reference (KL 0, below the target): down; then x0.8 or x1.2 each step
        ratios = [b / a for a, b in zip(coefs, coefs[1:], strict=False)]
        assert coefs[0] == 0.05 and ratios[0] == pytest.approx(0.8)
        assert all(r == pytest.approx(0.8) or r == pytest.approx(1.2) for r in ratios)
        saved = json.loads((tmp_path / "killed" / "out" / "checkpoint-4" / "ppo_state.json").read_text())
        assert saved["kl_coef"] == pytest.approx(coefs[4]) and saved["score_moments"]["count"] == 16


def test_ppo_samples_scores_and_updates_with_a_value_head(tmp_path, tiny_chat_dir, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def even_tokens(prompts, completions, completion_ids, **kwargs):\n"
        "    return [sum(t % 2 == 0 for t in ids) / max(1, len(ids)) for ids in completion_ids]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    records = run_stage(tmp_path, tiny_chat_dir, "ppo", PROMPTS, steps=4, rewards=["my_rewards:even_tokens"],
                        max_completion_length=8, num_ppo_epochs=3, data={"val_size": 4},
                        eval_strategy="steps", eval_steps=4, eval_on_start=True)
    for key in ("reward", "kl", "policy_loss", "value_loss", "clip_ratio"):
        assert len(series(records, key)) == 2, key
    assert all(0 <= r <= 1 for r in series(records, "reward"))
    # held-out prompts, greedy: before training the policy is the reference (KL 0); training moves it
    evals = [r for r in records if "eval_reward" in r]
    assert [r["step"] for r in evals] == [0, 4, 4] and all(0 <= r["eval_reward"] <= 1 for r in evals)
    assert evals[0]["eval_kl"] == pytest.approx(0, abs=1e-4) and abs(evals[-1]["eval_kl"]) > 1e-3
    assert all(1 <= r["eval_completions/mean_length"] <= 8 for r in evals)
    assert not any("policy_loss" in r for r in evals)  # training's means stay in training's records
    assert max(series(records, "clip_ratio")) > 0  # later epochs move the ratio past the clip
    adapter = tmp_path / "out" / "adapter"
    assert (adapter / "value_head.safetensors").is_file() and (adapter / "adapter_model.safetensors").is_file()


# --- LoRA+ (adapter.loraplus_ratio): the Trainer builds the LoRA+ optimizer itself, from the model it
# trains. A ready optimizer handed to a Trainer is refused under FSDP ("Passing `optimizers` is not
# allowed if PyTorch FSDP is enabled"), and one built before PPO wrapped the policy left its value
# head out of the optimizer.
RATIO, LR = 8.0, 1e-2


class Built(Exception):
    """Raised instead of training: the trainer was built."""


@pytest.fixture
def built(monkeypatch):
    """The trainer a run builds, caught at ``train()``."""
    from transformers import Trainer

    seen = {}

    def stop(self, *args, **kwargs):
        seen["trainer"] = self
        raise Built

    monkeypatch.setattr(Trainer, "train", stop)

    def build(config):
        with pytest.raises(Built):
            run_training(config)
        return seen["trainer"]

    return build


def _lora_plus(tmp_path, tiny_chat_dir, stage, rows, **options):
    path = stage_config(tmp_path, tiny_chat_dir, stage, rows, **options)
    text = path.read_text().replace("dropout: 0.0", f"dropout: 0.0\n  loraplus_ratio: {RATIO}")
    path.write_text(text)
    return path


def _learning_rates(trainer) -> dict[str, float]:
    """Each trainable parameter's learning rate in the trainer's optimizer."""
    optimizer = trainer.create_optimizer()
    ids = {id(p): n for n, p in trainer.model.named_parameters()}
    return {ids[id(p)]: group["lr"] for group in optimizer.param_groups for p in group["params"]}


def test_the_trainer_builds_lora_plus_groups_also_where_fsdp_refuses_a_ready_optimizer(tmp_path, tiny_chat_dir,
                                                                                        built, monkeypatch):
    from transformers import Trainer

    accelerate_setup = Trainer.create_accelerator_and_postprocess

    def as_under_fsdp(self):  # what accelerate sets on GPUs with an FSDP plugin; a CPU run never does
        accelerate_setup(self)
        self.is_fsdp_enabled = True

    monkeypatch.setattr(Trainer, "create_accelerator_and_postprocess", as_under_fsdp)
    trainer = built(_lora_plus(tmp_path, tiny_chat_dir, "sft", CHATS))
    assert trainer.is_fsdp_enabled and trainer.optimizer is None
    rates = _learning_rates(trainer)
    assert rates and all(rate == (LR * RATIO if ".lora_B." in name else LR) for name, rate in rates.items())
    assert any(".lora_B." in name for name in rates) and any(".lora_A." in name for name in rates)


def test_ppo_with_lora_plus_optimizes_the_value_head(tmp_path, tiny_chat_dir, built):
    trainer = built(_lora_plus(tmp_path, tiny_chat_dir, "ppo", PROMPTS, **PPO_OPTIONS))
    rates = _learning_rates(trainer)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert set(rates) == trainable
    assert any("value_head" in name for name in rates)


def test_a_lora_plus_run_learns(tmp_path, tiny_chat_dir):
    from ft_train.metrics import read_metrics

    run_training(_lora_plus(tmp_path, tiny_chat_dir, "sft", CHATS, steps=4))
    losses = [r["loss"] for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 2 and losses[-1] < losses[0]


# --- a reward model trained by `ft train` (stage rm) scores the online stages' samples, named by its
# adapter folder or by the run's output folder (what LLaMA-Factory's `reward_model` names)
HELD_OUT = [f"Question {i}: is {i} a number?" for i in range(100, 108)]


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory, tiny_chat_dir):
    """An rm run on the tiny model: it learns to score "yes it is" above "no it is"."""
    folder = tmp_path_factory.mktemp("rm")
    assert series(run_stage(folder, tiny_chat_dir, "rm", PAIRS, steps=10), "accuracy")[-1] == 1.0
    return folder / "out"


def ppo_scores(reward, tokenizer, answer: str):
    """What ppo's loop scores for each held-out prompt (left-padded, as sampled) followed by
    ``answer`` and the end-of-sequence token that ended it."""
    import torch

    from ft_train.stages.ppo import PPOTrainer

    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             return_dict=False) for q in HELD_OUT]
    width = max(map(len, prompts))
    prompt_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + list(p) for p in prompts])
    completion = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    completion_ids = torch.tensor([completion] * len(HELD_OUT))
    prompt_mask = (torch.arange(width) >= width - torch.tensor([len(p) for p in prompts])[:, None]).long()
    loop = types.SimpleNamespace(processing_class=tokenizer, rewards=[reward])
    return PPOTrainer._scores(loop, prompt_ids, completion_ids, torch.ones_like(completion_ids), prompt_mask)


def test_a_reward_model_scores_the_tokens_an_rm_run_trained_on(tiny_chat_dir):
    """prompt + answer + end of turn, token for token as ft-data made the rm's rows (not a decoded
    and re-tokenized text without the end-of-turn token): in ppo's loop, and called as TRL's grpo
    and rloo call a reward function (rendered prompts, completion ids ending in end-of-sequence)."""
    import torch
    from transformers import AutoTokenizer

    from ft_data import build_dataset
    from ft_train.stages.online import RewardModel

    class Recorder(torch.nn.Module):
        config = types.SimpleNamespace(_name_or_path="saves/rm")

        def __init__(self):
            super().__init__()
            self.placed = torch.nn.Parameter(torch.zeros(1))  # where the rows go

        def forward(self, input_ids, attention_mask):
            self.rows = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)]
            return types.SimpleNamespace(logits=torch.zeros(len(input_ids), 1))

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    pairs = [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": "yes it is"}],
              "rejected": [{"role": "assistant", "content": "no"}]} for q in HELD_OUT]
    rm_rows = [r["prompt_input_ids"] + r["chosen_input_ids"]
               for r in build_dataset(tokenizer, [pairs], stage="rm", cutoff_len=256, cache=False).dataset]
    reward = RewardModel(Recorder(), tokenizer, tokenizer)
    ppo_scores(reward, tokenizer, "yes it is")
    assert reward.model.rows == rm_rows
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in HELD_OUT]
    answer = tokenizer("yes it is", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert reward(prompts=prompts, completions=["yes it is"] * len(HELD_OUT), completion_ids=[answer] * len(HELD_OUT)) \
        == [0.0] * len(HELD_OUT)
    assert reward.model.rows == rm_rows and reward.__name__ == "rm"
    # a reward model reading another vocabulary gets the same rows as text, in its own tokens
    other = AutoTokenizer.from_pretrained(tiny_chat_dir)
    other.add_tokens(["<only-the-reward-model-has-it>"])
    reward = RewardModel(Recorder(), other, tokenizer)
    ppo_scores(reward, tokenizer, "yes it is")
    assert not reward.same_tokens and reward.model.rows == rm_rows


def test_ppo_hands_reward_functions_the_templated_prompts_grpo_hands_them(tiny_chat_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    seen = {}

    def record(prompts, completions, **kwargs):
        seen.update(prompts=prompts, completions=completions)
        return [1.0] * len(prompts)

    assert ppo_scores(record, tokenizer, "yes it is").tolist() == [1.0] * len(HELD_OUT)
    assert seen["prompts"] == [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                                             add_generation_prompt=True) for q in HELD_OUT]
    assert seen["completions"] == ["yes it is"] * len(HELD_OUT)


@pytest.mark.parametrize("named", ["adapter", "output_dir"])
def test_ppo_scores_with_the_trained_reward_model(reward_run, tiny_chat_dir, named):
    from transformers import AutoTokenizer

    from ft_train.stages.online import rewards_for

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    reward = rewards_for([str(reward_run / "adapter" if named == "adapter" else reward_run)], tokenizer)[0]
    chosen, rejected = ppo_scores(reward, tokenizer, "yes it is"), ppo_scores(reward, tokenizer, "no it is")
    assert (chosen > rejected).all(), (chosen, rejected)


def test_a_fully_tuned_reward_model_scores_from_its_model_folder(tmp_path, tiny_chat_dir):
    """A plain sequence-classification folder (a full-tuning rm run's output_dir/model) loads with
    its own tokenizer and ranks as it learned."""
    from transformers import AutoTokenizer

    from ft_train.stages.online import rewards_for

    config = stage_config(tmp_path, tiny_chat_dir, "rm", PAIRS, steps=10, learning_rate=1e-3)
    raw = yaml.safe_load(config.read_text())
    raw["adapter"] = {"type": "full"}
    config.write_text(yaml.safe_dump(raw))
    run_training(config)
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    reward = rewards_for([str(tmp_path / "out")], tokenizer)[0]
    assert reward.same_tokens
    assert (ppo_scores(reward, tokenizer, "yes it is") > ppo_scores(reward, tokenizer, "no it is")).all()


@pytest.mark.parametrize("stage", ["grpo", "rloo", "ppo"])
def test_online_stages_train_on_a_reward_model_folder(tmp_path, tiny_chat_dir, reward_run, stage):
    options = {"num_generations": 4} if stage != "ppo" else {}
    records = run_stage(tmp_path, tiny_chat_dir, stage, PROMPTS, steps=2, logging_steps=1,
                        rewards=[str(reward_run)], max_completion_length=8, **options)
    rewards = series(records, "reward")
    # the trained score head's scores: finite, and not a silent zero
    assert len(rewards) == 2 and all(math.isfinite(r) and r != 0.0 for r in rewards)


@pytest.mark.gpu
def test_ppo_on_a_gpu_moves_the_reward_model_and_the_frozen_reference_there(tmp_path, tiny_chat_dir, reward_run):
    """The Trainer places only the policy on the GPU; full fine-tuning's frozen reference and a
    reward-model folder's model must follow it, or the first rollout mixes devices."""
    config = stage_config(tmp_path, tiny_chat_dir, "ppo", PROMPTS, steps=2, logging_steps=1,
                          rewards=[str(reward_run)], max_completion_length=8)
    raw = yaml.safe_load(config.read_text())
    raw["adapter"] = {"type": "full"}
    config.write_text(yaml.safe_dump(raw))
    run_training(config)
    rewards = series(read_metrics(tmp_path / "out" / "metrics.jsonl"), "reward")
    assert len(rewards) == 2 and all(math.isfinite(r) for r in rewards)


@pytest.mark.parametrize("top", [{"top_k": 1}, {"top_p": 1e-6}], ids=["top_k", "top_p"])
def test_ppo_samples_within_top_k_and_top_p(tiny_chat_dir, top):
    """top_k 1 (or a top_p that keeps one token) samples the greedy completion; without them the
    samples differ from it (LLaMA-Factory's ppo YAMLs carry top_p: 0.9)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ft_train.stages.ppo import PolicyWithValue, PPOConfig, PPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_dir)
    policy = PolicyWithValue(AutoModelForCausalLM.from_pretrained(tiny_chat_dir))
    prompts = tokenizer([f"Tell me something {i}" for i in range(4)], return_tensors="pt")

    def sample(greedy=False, **options):
        args = PPOConfig(output_dir="unused", rewards=["ft_train.rewards:brevity"], max_completion_length=8, **options)
        loop = types.SimpleNamespace(args=args, processing_class=tokenizer)
        torch.manual_seed(0)
        return PPOTrainer._sample(loop, policy, dict(prompts), greedy=greedy)["completion"]

    greedy = sample(greedy=True)
    assert torch.equal(sample(**top), greedy)
    assert not torch.equal(sample(), greedy)


def test_a_run_continues_an_earlier_runs_adapter(tmp_path, tiny_chat_dir):
    """adapter.start_from (LLaMA-Factory's adapter_name_or_path): the second run starts where the
    first one's adapter left the loss, not where a new adapter starts."""
    first = series(run_stage(tmp_path / "first", tiny_chat_dir, "sft", CHATS, logging_steps=1), "loss")
    config = stage_config(tmp_path / "second", tiny_chat_dir, "sft", CHATS, logging_steps=1)
    raw = yaml.safe_load(config.read_text())
    raw["adapter"] = {"type": "lora", "start_from": str(tmp_path / "first" / "out" / "adapter")}
    config.write_text(yaml.safe_dump(raw))
    run_training(config)
    second = series(read_metrics(tmp_path / "second" / "out" / "metrics.jsonl"), "loss")
    # the same rows in the same order, so a new adapter would log first[0] again (10.79 here); the
    # continued one starts below where the first run was halfway (10.58 here)
    assert second[0] < first[0] - 0.15 and second[0] < first[len(first) // 2], (first, second)
    saved = json.loads((tmp_path / "second" / "out" / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 8  # the first run's adapter settings, kept
