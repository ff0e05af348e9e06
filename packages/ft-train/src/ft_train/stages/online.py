"""grpo and rloo: TRL's online trainers. Prompts come from ft-data (the chat template already
applied); rewards are Python functions named by import path (``package.module:function``) or
reward-model folders (a plain model, an adapter an ft rm run saved, or that run's output folder,
which is what LLaMA-Factory's ``reward_model`` names).

A reward function takes ``(prompts, completions, **kwargs)`` and returns one float per completion
(TRL's contract); ``ft_train.rewards`` has a few.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ft_core import FtError, did_you_mean
from ft_train.stages._stage import Stage
from ft_train.stages.sft import pad_id

PLOTTED = ("reward", "reward_std", "kl", "completions/mean_length")


def _grpo_config(user_args):
    from ft_train.stages.online_config import GRPORewardsConfig

    return GRPORewardsConfig


def _rloo_config(user_args):
    from ft_train.stages.online_config import RLOORewardsConfig

    return RLOORewardsConfig


def check_rewards(rewards: list[str]) -> None:
    """Before anything loads: at least one reward, and every import path resolves."""
    if not rewards:
        raise FtError("rewards: name at least one reward (an import path package.module:function, "
                      "or a reward-model folder)")
    for spec in rewards:
        if Path(spec).expanduser().is_dir():
            reward_folder(Path(spec).expanduser())
        else:
            load_reward(spec)


def reward_folder(folder: Path) -> Path:
    """The folder holding the reward model's weights: ``folder`` itself, or the ``adapter``/``model``
    folder an ft run wrote into its output folder."""
    for candidate in (folder, folder / "adapter", folder / "model"):
        if (candidate / "adapter_config.json").is_file() or (candidate / "config.json").is_file():
            return candidate
    raise FtError(f"rewards: {folder} holds no reward model: expected a model folder (config.json), an adapter "
                  "(adapter_config.json), or the output folder of an ft rm run (with adapter/ or model/ in it)")


def load_reward(spec: str):
    """A reward function from ``package.module:function``, or (model, its tokenizer) from a folder."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return _reward_model(reward_folder(folder))
    if "/" in spec or "\\" in spec or spec.startswith(("~", ".")):  # a path, not package.module:function
        raise FtError(f"rewards: no folder {folder} (a relative path is taken from the working directory, {Path.cwd()})")
    module_name, _, name = spec.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError) as e:
        raise FtError(f"rewards: cannot import '{module_name}' for reward '{spec}' ({e}); give "
                      "package.module:function (importable here) or a reward-model folder") from None
    if not callable(getattr(module, name, None)):
        found = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise FtError(f"rewards: '{module_name}' has no function '{name}'{did_you_mean(name, found)}")
    return getattr(module, name)


def _reward_model(folder: Path):
    """The model in a reward folder (a plain sequence-classification model, or an rm run's adapter
    on its base, merged) and its own tokenizer."""
    import json

    from ft_models import load_adapter, load_model, load_tokenizer

    if not (folder / "adapter_config.json").is_file():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).eval(), load_tokenizer(str(folder))
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    model = load_adapter(load_model(base, dtype="float32", head="score"), str(folder))
    if (folder / "tokenizer_config.json").is_file():  # an ft run saves the tokenizer with its adapter
        from transformers import AutoTokenizer

        return model.merge_and_unload().eval(), AutoTokenizer.from_pretrained(folder)
    return model.merge_and_unload().eval(), load_tokenizer(base)


class RewardModel:
    """A reward model scoring a policy's samples on the rows an rm run trains on: the prompt's
    tokens, the completion's, and the end-of-sequence token that ended it (an rm row is prompt +
    answer + end of turn). Where the reward model reads another vocabulary than the policy, the
    rows go over as text into its own tokenizer. Called as a reward function (TRL's contract:
    rendered prompts, completion token ids) or, by ppo, with the token rows themselves.
    """

    def __init__(self, model, tokenizer, policy_tokenizer):
        self.model, self.tokenizer, self.policy_tokenizer = model, tokenizer, policy_tokenizer
        self.same_tokens = tokenizer.get_vocab() == policy_tokenizer.get_vocab()
        self.__name__ = Path(str(model.config._name_or_path or "reward_model")).name  # TRL logs rewards by it

    def to(self, device) -> RewardModel:
        self.model.to(device)
        return self

    def __call__(self, prompts, completions, completion_ids, **kwargs) -> list[float]:
        prompt_ids = self.policy_tokenizer(prompts, add_special_tokens=False)["input_ids"]
        return self.score_rows([p + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]).tolist()

    @torch.no_grad()
    def score_rows(self, rows: list[list[int]]):
        """One score per row of the policy's token ids."""
        if not self.same_tokens:
            texts = self.policy_tokenizer.batch_decode(rows)
            rows = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        device = next(self.model.parameters()).device
        tensors = [torch.tensor(r, dtype=torch.long, device=device) for r in rows]
        ids = nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad_id(self.tokenizer))
        attention = nn.utils.rnn.pad_sequence([torch.ones_like(t) for t in tensors], batch_first=True)
        return self.model(input_ids=ids, attention_mask=attention).logits[:, 0].float()


def rewards_for(specs: list[str], policy_tokenizer) -> list:
    """The ``rewards:`` list as callables: functions as they are, reward folders as ``RewardModel``."""
    rewards = []
    for spec in specs:
        reward = load_reward(spec)
        rewards.append(RewardModel(*reward, policy_tokenizer) if isinstance(reward, tuple) else reward)
    return rewards


class _FinishedPrompts:
    """TRL tokenizes prompts itself: ours are rendered by ft-data (template, system prompt, tools),
    so they are encoded as they are, without another BOS."""

    def _tokenize_prompts(self, prompts: list):
        return self.processing_class(prompts, add_special_tokens=False)["input_ids"], None, {}


def _prompt_texts(rows, tokenizer):
    return rows.map(lambda r: {"prompt": tokenizer.decode(r["prompt_input_ids"])}, remove_columns=["prompt_input_ids"])


def _online_trainer(trainer_cls):
    def make(*, model, args, tokenizer, data, eval_data, callbacks):
        cls = type(f"FinishedPrompts{trainer_cls.__name__}", (_FinishedPrompts, trainer_cls), {})
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        rewards = rewards_for(args.rewards, tokenizer)
        trainer = cls(model=model, args=args, reward_funcs=rewards, train_dataset=_prompt_texts(data.dataset, tokenizer),
                      eval_dataset=_prompt_texts(eval_data, tokenizer) if eval_data is not None else None,
                      processing_class=tokenizer, callbacks=callbacks)
        for reward in rewards:  # TRL places only the reward models it loads itself
            if isinstance(reward, RewardModel):
                reward.to(trainer.accelerator.device)
        return trainer
    return make


def _grpo_trainer(**kwargs):
    from trl import GRPOTrainer

    return _online_trainer(GRPOTrainer)(**kwargs)


def _rloo_trainer(**kwargs):
    from trl import RLOOTrainer

    return _online_trainer(RLOOTrainer)(**kwargs)


GRPO = Stage("grpo", "grpo", _grpo_config, _grpo_trainer, plotted=PLOTTED)
RLOO = Stage("rloo", "grpo", _rloo_config, _rloo_trainer, plotted=PLOTTED)
