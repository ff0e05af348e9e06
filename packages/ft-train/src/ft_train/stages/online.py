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

from ft_core import FtError, did_you_mean
from ft_train.stages._stage import Stage

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
    """A reward function from ``package.module:function``, or a reward model from a folder."""
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
    from ft_models import load_adapter, load_model

    if not (folder / "adapter_config.json").is_file():
        return str(folder)  # TRL loads a plain sequence-classification folder itself
    import json

    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    model = load_adapter(load_model(base, dtype="float32", head="score"), str(folder))
    return model.merge_and_unload().eval()


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
        rewards = [load_reward(spec) for spec in args.rewards]
        return cls(model=model, args=args, reward_funcs=rewards, train_dataset=_prompt_texts(data.dataset, tokenizer),
                   eval_dataset=_prompt_texts(eval_data, tokenizer) if eval_data is not None else None,
                   processing_class=tokenizer, callbacks=callbacks)
    return make


def _grpo_trainer(**kwargs):
    from trl import GRPOTrainer

    return _online_trainer(GRPOTrainer)(**kwargs)


def _rloo_trainer(**kwargs):
    from trl import RLOOTrainer

    return _online_trainer(RLOOTrainer)(**kwargs)


GRPO = Stage("grpo", "grpo", _grpo_config, _grpo_trainer, plotted=PLOTTED)
RLOO = Stage("rloo", "grpo", _rloo_config, _rloo_trainer, plotted=PLOTTED)
