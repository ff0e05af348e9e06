"""What ft's ppo carries from batch to batch besides the weights: the KL coefficient, adapted
toward a target KL (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences",
what LLaMA-Factory's PPO runs with by default), and the running mean and variance that
normalise scores. A checkpoint saves both (``state()``), so a resumed run continues them.

Example:
    >>> kl = KLController(coef=0.2, target=6.0, horizon=10_000)
    >>> kl.update(12.0, samples=100)  # twice the target: the coefficient grows by 0.2 * 100 / 10,000
    >>> round(kl.coef, 4)
    0.2004
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

MAX_ERROR = 0.2  # the paper's clip on the proportional error


@dataclass
class KLController:
    """The KL penalty's coefficient; with a ``target``, adapted after each batch, else fixed."""

    coef: float
    target: float | None = None
    horizon: int = 10_000

    def update(self, kl: float, samples: int) -> None:
        """After a batch of ``samples`` completions whose KL to the reference (summed over each
        completion's tokens) averaged ``kl``: the coefficient moves by the clipped proportional
        error ``kl / target - 1``, scaled by ``samples / horizon``."""
        if self.target is None:
            return
        error = min(max(kl / self.target - 1, -MAX_ERROR), MAX_ERROR)
        self.coef *= 1 + error * samples / self.horizon


@dataclass
class RunningMoments:
    """Mean and variance of every score seen so far, merged batch by batch (Chan et al.'s
    parallel formula), to normalise scores to about zero mean and unit deviation."""

    mean: float = 0.0
    var: float = 0.0  # of the population seen
    count: int = 0

    def update(self, xs: torch.Tensor) -> None:
        n = xs.numel()
        if n == 0:
            return
        xs = xs.double()
        batch_mean, batch_var = xs.mean().item(), xs.var(unbiased=False).item()
        total = self.count + n
        delta = batch_mean - self.mean
        self.var = (self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total) / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        """The sample standard deviation (1 until two scores were seen)."""
        return math.sqrt(self.var * self.count / (self.count - 1)) if self.count > 1 else 1.0

    def normalise(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores - self.mean) / (self.std + torch.finfo(scores.dtype).eps)


def state(kl: KLController, moments: RunningMoments) -> dict:
    """What a checkpoint keeps (``ppo_state.json``)."""
    return {"kl_coef": kl.coef, "score_moments": asdict(moments)}


def restore(saved: dict, kl: KLController, moments: RunningMoments) -> None:
    kl.coef = float(saved["kl_coef"])
    for key, value in saved["score_moments"].items():
        setattr(moments, key, value)
