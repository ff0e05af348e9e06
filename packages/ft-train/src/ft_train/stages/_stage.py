"""What a training stage is: which ft-data rows it trains on, which TRL config holds its ``train:``
keys, and how its trainer is built from the model, the rows and the arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One training stage.

    ``config_class(user_args)`` is the dataclass whose fields the ``train:`` keys are (a TRL config,
    or ours where TRL has none); ``defaults(run_config)`` are stage defaults under the user's keys;
    ``make_trainer(model=, args=, tokenizer=, data=, eval_data=, callbacks=)`` returns a
    Trainer; ``head`` is the model's head (causal, or score for reward models); ``plotted`` are the
    logged metrics drawn beside the loss; ``perplexity``: eval loss is a language-model loss.
    """

    name: str
    data_stage: str
    config_class: Callable[[dict[str, Any]], type]
    make_trainer: Callable[..., Any]
    defaults: Callable[[Any], dict[str, Any]] = lambda config: {}
    head: str = "causal"
    plotted: tuple[str, ...] = field(default_factory=tuple)
    perplexity: bool = False
