"""ppo: ours, since TRL 1.16 has no PPOTrainer (and LLaMA-Factory's needs trl <= 0.9.6).

Each training step is one PPO iteration on a batch of prompts: sample completions from the policy,
score them with the rewards (as grpo's: import paths or reward-model folders), take log-probs of
the policy, of the frozen reference (the base with the adapter off; a frozen copy for full
fine-tuning) and values from a linear value head on the policy's last hidden state; KL-penalised
rewards, GAE, then ``num_ppo_epochs`` updates of the clipped policy and value losses. The KL
coefficient stays at ``kl_coef`` or, with ``kl_target``, adapts toward that KL per completion (as
LLaMA-Factory's PPO does); ``score_norm`` normalises scores by their running mean and deviation and
``whiten_rewards`` whitens the per-token rewards before GAE. It runs as a
``transformers.Trainer``, so checkpoints, resume, logging and several processes work as for every
other stage; the checkpoints carry the value head (``value_head.safetensors``), the KL coefficient
and the score moments (``ppo_state.json``). Held-out prompts
(``data.eval`` or ``val_size``) are evaluated with greedy completions, the answer a user gets by
default: ``eval_reward``, ``eval_kl`` (summed over each completion's tokens, to the reference) and
``eval_completions/mean_length``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from ft_core import FtError, atomic_write_text
from ft_train.stages._stage import Stage
from ft_train.stages.online import RewardModel, check_rewards, rewards_for
from ft_train.stages.ppo_control import KLController, RunningMoments, restore, state
from ft_train.stages.ppo_loss import gae, penalised_rewards, ppo_losses, token_logps, whiten

VALUE_HEAD = "value_head.safetensors"
PPO_STATE = "ppo_state.json"


@dataclass
class PPOConfig(TrainingArguments):
    """TrainingArguments plus PPO's settings."""

    rewards: list[str] = field(default_factory=list, metadata={"help": "import paths or reward-model folders"})
    max_completion_length: int = field(default=32, metadata={"help": "tokens sampled per prompt"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_k: int = field(default=0, metadata={"help": "sample among the k likeliest tokens (0: all)"})
    top_p: float = field(default=1.0, metadata={"help": "sample within this much probability (1: all)"})
    num_ppo_epochs: int = field(default=2, metadata={"help": "updates per batch of samples"})
    kl_coef: float = field(default=0.05, metadata={"help": "weight of the KL penalty to the reference (the start, "
                                                            "with kl_target)"})
    kl_target: float | None = field(default=None, metadata={
        "help": "adapt kl_coef after each batch toward this KL per completion (LLaMA-Factory's ppo_target); "
                "unset: kl_coef stays fixed"})
    kl_horizon: int = field(default=10_000, metadata={"help": "samples over which kl_coef adapts (with kl_target)"})
    score_norm: bool = field(default=False, metadata={"help": "normalise scores by their running mean and deviation"})
    whiten_rewards: bool = field(default=False, metadata={"help": "whiten the per-token rewards before GAE"})
    cliprange: float = field(default=0.2, metadata={"help": "policy ratio clip"})
    cliprange_value: float = field(default=0.2, metadata={"help": "value clip"})
    vf_coef: float = field(default=0.1, metadata={"help": "weight of the value loss"})
    gamma: float = field(default=1.0, metadata={"help": "discount"})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda"})

    def __post_init__(self):
        check_rewards(self.rewards)
        if self.kl_target is not None and self.kl_target <= 0:
            raise FtError(f"train.kl_target must be positive (a KL per completion), found {self.kl_target}")
        if self.kl_horizon <= 0:
            raise FtError(f"train.kl_horizon must be positive, found {self.kl_horizon}")
        super().__post_init__()


class PolicyWithValue(nn.Module):
    """The policy (a PeftModel, or a full model) and a linear value head on its last hidden state."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy
        self.value_head = nn.Linear(policy.config.hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.config = policy.config

    def forward(self, input_ids, attention_mask):
        out = self.policy(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
        return out.logits, self.value_head(out.hidden_states[-1].to(self.value_head.weight.dtype)).squeeze(-1)

    def reference(self):
        """A context in which ``policy`` is the reference (the adapter switched off)."""
        return self.policy.disable_adapter() if hasattr(self.policy, "disable_adapter") else nullcontext()

    def save_pretrained(self, folder, **kwargs):
        from safetensors.torch import save_file

        self.policy.save_pretrained(folder, **kwargs)
        save_file({k: v.contiguous() for k, v in self.value_head.state_dict().items()}, str(Path(folder) / VALUE_HEAD))


class PromptCollator:
    """Prompts left-padded, ready to generate from."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features):
        width = max(len(f["prompt_input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, f in enumerate(features):
            row = f["prompt_input_ids"]
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        return {"input_ids": ids, "attention_mask": mask}


class PPOTrainer(Trainer):
    def __init__(self, *args, rewards, reference=None, **kwargs):
        super().__init__(*args, **kwargs)
        # the Trainer places only the policy: reward models and the frozen reference go where it went
        device = self.args.device
        self.rewards = [r.to(device) if isinstance(r, RewardModel) else r for r in rewards]
        self.frozen_reference = reference.to(device) if reference is not None else None  # full fine-tuning only
        self._logged: dict[str, list[float]] = defaultdict(list)
        self.kl = KLController(self.args.kl_coef, self.args.kl_target, self.args.kl_horizon)
        self.score_moments = RunningMoments()

    # -- one PPO iteration per training step ---------------------------------------------------

    def training_step(self, model, inputs, num_items_in_batch=None):
        rollout = self._rollout(model, inputs)
        a = self.args
        for epoch in range(a.num_ppo_epochs):
            logits, values = model(rollout["sequences"], rollout["attention_mask"])
            logps, values = self._completion(logits, rollout), values[:, rollout["start"] - 1:-1]
            policy_loss, value_loss, clipped = ppo_losses(
                logps, rollout["logps"], rollout["advantages"], values, rollout["values"], rollout["returns"],
                rollout["mask"], a.cliprange, a.cliprange_value)
            loss = policy_loss + a.vf_coef * value_loss
            self.accelerator.backward(loss)
            if epoch < a.num_ppo_epochs - 1:  # the Trainer steps the optimizer after the last one
                if a.max_grad_norm:
                    self.accelerator.clip_grad_norm_(model.parameters(), a.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
        self._note(policy_loss=policy_loss, value_loss=value_loss, clip_ratio=clipped)
        return loss.detach()

    def _sample(self, unwrapped, inputs, greedy: bool = False) -> dict:
        """Completions of the batch's prompts, their tokens up to the first end-of-sequence (``mask``)."""
        prompts, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
        was_training = unwrapped.training
        unwrapped.eval()
        sampling = {"do_sample": False} if greedy else \
            {"do_sample": True, "temperature": self.args.temperature, "top_k": self.args.top_k, "top_p": self.args.top_p}
        sequences = unwrapped.policy.generate(
            input_ids=prompts, attention_mask=prompt_mask, max_new_tokens=self.args.max_completion_length,
            use_cache=True, pad_token_id=self.processing_class.pad_token_id, **sampling)
        unwrapped.train(was_training)
        start = prompts.shape[1]
        completion = sequences[:, start:]
        eos = completion == self.processing_class.eos_token_id
        after_eos = (eos.cumsum(1) - eos.int()) > 0  # tokens after the first end-of-sequence
        mask = (~after_eos).float()
        attention = torch.cat([prompt_mask, mask.long()], 1)
        return {"sequences": sequences, "attention_mask": attention, "start": start, "completion": completion,
                "mask": mask, "prompts": prompts, "prompt_mask": prompt_mask}

    def _reference_logps(self, unwrapped, rollout) -> torch.Tensor:
        with unwrapped.reference():
            ref_model = self.frozen_reference or unwrapped.policy
            logits = ref_model(input_ids=rollout["sequences"], attention_mask=rollout["attention_mask"]).logits
            return self._completion(logits, rollout)

    @torch.no_grad()
    def _rollout(self, model, inputs) -> dict:
        unwrapped = self.accelerator.unwrap_model(model)
        rollout = self._sample(unwrapped, inputs)
        start, completion, mask = rollout["start"], rollout["completion"], rollout["mask"]
        logits, values = model(rollout["sequences"], rollout["attention_mask"])
        logps, values = self._completion(logits, rollout), values[:, start - 1:-1] * mask
        ref_logps = self._reference_logps(unwrapped, rollout)
        scores = self._scores(rollout["prompts"], completion, mask, rollout["prompt_mask"])
        self._note(reward=scores.mean(), kl_coef=self.kl.coef)
        if self.args.score_norm:  # every process's scores, so that all hold the same moments
            self.score_moments.update(self.accelerator.gather(scores))
            scores = self.score_moments.normalise(scores)
        rewards, kl = penalised_rewards(scores, logps, ref_logps, mask, self.kl.coef)
        if self.args.whiten_rewards:
            rewards = whiten(rewards, mask, shift_mean=False)
        advantages, returns = gae(rewards, values, mask, self.args.gamma, self.args.lam)
        kl_per_completion = self.accelerator.gather(kl.sum(1))
        self.kl.update(kl_per_completion.mean().item(), samples=kl_per_completion.numel())
        self._note(kl=kl.sum(1).mean(), **{"completions/mean_length": mask.sum(1).mean()})
        return {**rollout, "logps": logps, "values": values, "advantages": whiten(advantages, mask),
                "returns": returns}

    @torch.no_grad()
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """Greedy completions of the held-out prompts: their mean reward, KL to the reference and length."""
        unwrapped = self.accelerator.unwrap_model(self.model)
        totals = torch.zeros(3, device=self.args.device)  # reward, kl, length: sums over prompts
        count = 0
        for inputs in self.get_eval_dataloader(eval_dataset):
            inputs = self._prepare_inputs(inputs)
            rollout = self._sample(unwrapped, inputs, greedy=True)
            logps = self._completion(unwrapped.policy(input_ids=rollout["sequences"],
                                                      attention_mask=rollout["attention_mask"]).logits, rollout)
            kl = (logps - self._reference_logps(unwrapped, rollout)).sum(1)
            scores = self._scores(rollout["prompts"], rollout["completion"], rollout["mask"], rollout["prompt_mask"])
            rows = torch.stack([scores, kl, rollout["mask"].sum(1)], 1)
            rows = self.accelerator.gather_for_metrics(rows)
            totals += rows.sum(0)
            count += rows.size(0)
        means = (totals / max(count, 1)).tolist()
        metrics = {f"{metric_key_prefix}_{name}": value
                   for name, value in zip(("reward", "kl", "completions/mean_length"), means, strict=True)}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _completion(self, logits, rollout):
        start = rollout["start"]
        return token_logps(logits[:, start - 1:-1], rollout["completion"]) * rollout["mask"]

    def _scores(self, prompts, completion, mask, prompt_mask) -> torch.Tensor:
        """One score per completion, summed over the rewards. Reward functions get the prompts with
        their chat-template markers (as grpo's and rloo's do) and the completions' text; a reward
        model gets the tokens themselves, the end-of-sequence token that ended a completion
        included: the sequence an rm run trained on (prompt + answer + end of turn), not a decoded
        and re-tokenized text."""
        tok = self.processing_class
        prompt_rows = [row[m.bool()] for row, m in zip(prompts, prompt_mask, strict=True)]
        completion_rows = [row[: int(m.sum())] for row, m in zip(completion, mask, strict=True)]
        texts = tok.batch_decode(completion.masked_fill(mask == 0, tok.pad_token_id), skip_special_tokens=True)
        prompt_texts = tok.batch_decode(prompt_rows)
        total = torch.zeros(len(texts), device=completion.device)
        for reward in self.rewards:
            if isinstance(reward, RewardModel):  # the token rows themselves, not text
                rows = [torch.cat(pair).tolist() for pair in zip(prompt_rows, completion_rows, strict=True)]
                total += reward.score_rows(rows).to(total.device)
            else:
                got = reward(prompts=prompt_texts, completions=texts, completion_ids=[r.tolist() for r in completion_rows])
                total += torch.tensor([0.0 if v is None else float(v) for v in got], device=total.device)
        return total

    # -- logging, saving and resuming the value head with the adapter -------------------------------

    def _note(self, **values) -> None:
        for name, value in values.items():
            self._logged[name].append(float(value.detach() if isinstance(value, torch.Tensor) else value))

    def log(self, logs, *args, **kwargs):
        if not any(key.startswith("eval_") for key in logs):  # training's means go with training's record
            logs.update({k: sum(v) / len(v) for k, v in self._logged.items() if v})
            self._logged.clear()
        super().log(logs, *args, **kwargs)

    def _save(self, output_dir=None, state_dict=None):
        folder = output_dir or self.args.output_dir
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.accelerator.unwrap_model(self.model).save_pretrained(folder)
        atomic_write_text(Path(folder) / PPO_STATE, json.dumps(state(self.kl, self.score_moments)))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from safetensors.torch import load_file

        unwrapped = self.accelerator.unwrap_model(self.model)
        folder = Path(resume_from_checkpoint)
        unwrapped.value_head.load_state_dict(load_file(folder / VALUE_HEAD))
        if (folder / PPO_STATE).is_file():  # checkpoints from ft-train 0.13.1 on
            restore(json.loads((folder / PPO_STATE).read_text()), self.kl, self.score_moments)
        if (folder / "adapter_model.safetensors").is_file():
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(unwrapped.policy, load_file(folder / "adapter_model.safetensors"))
        else:
            from transformers.modeling_utils import load_sharded_checkpoint

            load_sharded_checkpoint(unwrapped.policy, str(folder), strict=False)


def _config_class(user_args):
    return PPOConfig


def _trainer(*, model, args, tokenizer, data, eval_data, callbacks):
    import copy

    from ft_train.stages.sft import pad_id

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reference = None
    if not hasattr(model, "disable_adapter"):  # full or freeze tuning: a frozen copy is the reference
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    wrapped = PolicyWithValue(model)
    rewards = rewards_for(args.rewards, tokenizer)
    return PPOTrainer(model=wrapped, args=args, train_dataset=data.dataset, eval_dataset=eval_data,
                      processing_class=tokenizer, data_collator=PromptCollator(pad_id(tokenizer)), callbacks=callbacks,
                      rewards=rewards, reference=reference)


PPO = Stage("ppo", "ppo", _config_class, _trainer, lambda config: {"remove_unused_columns": False},
            plotted=("reward", "kl", "kl_coef", "value_loss", "completions/mean_length"))
