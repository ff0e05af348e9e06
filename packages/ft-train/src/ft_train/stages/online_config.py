"""TRL's GRPO and RLOO configs plus ``rewards`` (module-level, so checkpoints can pickle them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trl import GRPOConfig, RLOOConfig

_REWARDS_HELP = "import paths (package.module:function) or reward-model folders"


class _Rewards:
    def _check_rewards(self) -> None:
        """Before anything loads: at least one reward, and every import path resolves."""
        from ft_train.stages.online import load_reward

        if not self.rewards:
            raise ValueError("rewards: name at least one reward (an import path package.module:function, "
                             "or a reward-model folder)")
        for spec in self.rewards:
            if not Path(spec).expanduser().is_dir():
                load_reward(spec)


@dataclass
class GRPORewardsConfig(GRPOConfig, _Rewards):
    rewards: list[str] = field(default_factory=list, metadata={"help": _REWARDS_HELP})

    def __post_init__(self):
        self._check_rewards()
        super().__post_init__()


@dataclass
class RLOORewardsConfig(RLOOConfig, _Rewards):
    rewards: list[str] = field(default_factory=list, metadata={"help": _REWARDS_HELP})

    def __post_init__(self):
        self._check_rewards()
        super().__post_init__()
