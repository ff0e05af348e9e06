"""Training stages on HF Trainer / TRL, from one YAML run config.

``run_training`` and ``TrainResult`` load on first use (PEP 562): importing ``ft_train`` or its
config module does not import torch, transformers' trainer, PEFT or TRL, so a bad run config is
refused in about a second.

Example:
    >>> from ft_train import run_training
    >>> result = run_training("examples/sft_lora_demo.yaml")  # doctest: +SKIP
    >>> result.output_dir  # doctest: +SKIP
"""

from ft_train import _compat  # noqa: F401  (version guard runs first)
from ft_train.config import RunConfig, load_run_config

__all__ = ["RunConfig", "TrainResult", "load_run_config", "run_training"]


def __getattr__(name: str):
    if name in ("TrainResult", "run_training"):
        from ft_train import run

        return getattr(run, name)
    raise AttributeError(f"module 'ft_train' has no attribute {name!r}")
