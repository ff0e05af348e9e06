"""TRL's GRPO and RLOO configs plus ``rewards`` (module-level, so checkpoints can pickle them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig, RLOOConfig

from ft_train.stages.online import check_rewards

_REWARDS_HELP = "import paths (package.module:function) or reward-model folders"


@dataclass
class GRPORewardsConfig(GRPOConfig):
    rewards: list[str] = field(default_factory=list, metadata={"help": _REWARDS_HELP})

    def __post_init__(self):
        check_rewards(self.rewards)
        super().__post_init__()


@dataclass
class RLOORewardsConfig(RLOOConfig):
    rewards: list[str] = field(default_factory=list, metadata={"help": _REWARDS_HELP})

    def __post_init__(self):
        check_rewards(self.rewards)
        super().__post_init__()
