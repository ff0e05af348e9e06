"""Preference losses that need no reference model, as one small Trainer subclass: ORPO, SimPO and
reference-free DPO (sigmoid, ipo, hinge).

Why ours: TRL 1.16 has ORPO and SimPO only in ``trl.experimental`` (a warning on import, a
tokenizer step to override, and ORPO's NLL there covers the prompt tokens too, where the paper
and LLaMA-Factory train on the chosen answer only); its DPOTrainer has no reference-free switch.
Each loss is a few lines on the answers' log-probabilities.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from ft_data.masking import IGNORE_INDEX

LOSSES = ("orpo", "simpo", "sigmoid", "ipo", "hinge")


@dataclass
class PreferenceConfig(TrainingArguments):
    """TrainingArguments plus the loss: ``loss_type`` (orpo, simpo; sigmoid, ipo, hinge = DPO's
    losses without a reference model), ``beta``, ``simpo_gamma`` (SimPO's target margin)."""

    loss_type: str = field(default="orpo", metadata={"help": "orpo, simpo, sigmoid, ipo or hinge"})
    beta: float = field(default=0.1, metadata={"help": "strength of the preference term"})
    simpo_gamma: float = field(default=0.5, metadata={"help": "SimPO's target reward margin"})
    max_length: int | None = field(default=None, metadata={"help": "rows are already cut to data.cutoff_len"})

    def __post_init__(self):
        super().__post_init__()
        if self.loss_type not in LOSSES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSSES)}, found {self.loss_type!r}")


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob of each row's labelled tokens, how many there are)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != IGNORE_INDEX
    picked = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1).clamp(min=1)


def preference_loss(kind: str, beta: float, gamma: float, sums: torch.Tensor, counts: torch.Tensor):
    """(loss, chosen rewards, rejected rewards, extra metrics) for rows [chosen..., rejected...]."""
    half = sums.shape[0] // 2
    avg = sums / counts
    (c_sum, r_sum), (c_avg, r_avg) = sums.split(half), avg.split(half)
    extra = {}
    if kind == "orpo":  # odds ratio of the length-normalised probabilities, plus the chosen answers' NLL
        log_odds = (c_avg - r_avg) - (torch.log1p(-c_avg.exp().clamp(max=1 - 1e-6))
                                      - torch.log1p(-r_avg.exp().clamp(max=1 - 1e-6)))
        nll = -c_sum.sum() / counts[:half].sum()
        loss = nll - beta * F.logsigmoid(log_odds).mean()
        extra = {"nll_loss": nll.detach(), "log_odds_ratio": log_odds.detach().mean()}
        return loss, beta * c_avg, beta * r_avg, extra
    if kind == "simpo":
        margin = beta * (c_avg - r_avg) - gamma
        return -F.logsigmoid(margin).mean(), beta * c_avg, beta * r_avg, extra
    diff = c_sum - r_sum  # DPO's losses with the reference log-ratio taken as 0
    losses = {"sigmoid": lambda: -F.logsigmoid(beta * diff), "hinge": lambda: torch.relu(1 - beta * diff),
              "ipo": lambda: (diff - 1 / (2 * beta)) ** 2}
    return losses[kind]().mean(), beta * c_sum, beta * r_sum, extra


class PreferenceTrainer(Trainer):
    """Trains on ft-data's PairwiseCollator batches (the chosen rows, then the rejected ones)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._logged: dict[str, list[float]] = defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        sums, counts = answer_logps(outputs.logits, labels)
        a = self.args
        loss, chosen, rejected, extra = preference_loss(a.loss_type, a.beta, a.simpo_gamma, sums, counts)
        for name, value in {"rewards/chosen": chosen.mean(), "rewards/rejected": rejected.mean(),
                            "rewards/margins": (chosen - rejected).mean(),
                            "rewards/accuracies": (chosen > rejected).float().mean(), **extra}.items():
            self._logged[name].append(float(value.detach()))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        prefix = "eval_" if any(k.startswith("eval_") for k in logs) else ""
        logs.update({prefix + k: sum(v) / len(v) for k, v in self._logged.items() if v})
        self._logged.clear()
        super().log(logs, *args, **kwargs)
