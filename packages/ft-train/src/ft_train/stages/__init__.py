"""Training stages: one module each, one registry.

Example:
    >>> sorted(STAGES)
    ['dpo', 'grpo', 'kto', 'orpo', 'ppo', 'pt', 'rloo', 'rm', 'sft']
"""

from ft_core import FtError, did_you_mean
from ft_train.stages._stage import Stage
from ft_train.stages.kto import KTO
from ft_train.stages.online import GRPO, RLOO
from ft_train.stages.ppo import PPO
from ft_train.stages.preference import DPO, ORPO, RM
from ft_train.stages.sft import PT, SFT

STAGES: dict[str, Stage] = {s.name: s for s in (PT, SFT, RM, DPO, KTO, ORPO, GRPO, RLOO, PPO)}


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise FtError(f"unknown stage '{name}'{did_you_mean(name, STAGES)}; stages: {', '.join(STAGES)}")
    return STAGES[name]


__all__ = ["STAGES", "Stage", "get_stage"]
