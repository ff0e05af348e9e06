"""Training stages on HF Trainer / TRL, from one YAML run config.

Example:
    >>> from ft_train import run_training
    >>> result = run_training("examples/sft_lora_demo.yaml")  # doctest: +SKIP
    >>> result.output_dir  # doctest: +SKIP
"""

from ft_train import _compat  # noqa: F401  (version guard runs first)
from ft_train.config import RunConfig, load_run_config
from ft_train.run import TrainResult, run_training

__all__ = ["RunConfig", "TrainResult", "load_run_config", "run_training"]
