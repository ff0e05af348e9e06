"""Tokenization per training stage: which canonical record each needs and how it is tokenized."""

from ft_data.stages.kto import tokenize_kto
from ft_data.stages.pairwise import tokenize_pairwise
from ft_data.stages.prompt import tokenize_prompt
from ft_data.stages.pt import tokenize_pt
from ft_data.stages.sft import sft_columns, tokenize_sft

# stage -> (record kinds it accepts, tokenizer function)
STAGES = {
    "pt": (("text", "prompt"), tokenize_pt),
    "sft": (("conversation",), tokenize_sft),
    "rm": (("preference",), tokenize_pairwise),
    "dpo": (("preference",), tokenize_pairwise),
    "orpo": (("preference",), tokenize_pairwise),
    "kto": (("kto",), tokenize_kto),
    "ppo": (("prompt", "conversation", "preference", "kto"), tokenize_prompt),
    "grpo": (("prompt", "conversation", "preference", "kto"), tokenize_prompt),
}

# stage -> the same as flat token columns, for stages that have that faster single-process route
COLUMNAR = {"sft": sft_columns}

__all__ = ["COLUMNAR", "STAGES"]
