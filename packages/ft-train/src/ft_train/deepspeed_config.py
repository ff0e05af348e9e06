"""``train.deepspeed``: a DeepSpeed config (a mapping in the YAML, or a JSON file) made complete.

transformers fills a DeepSpeed config's ``"auto"`` values from the ``train:`` keys, but a key that
is absent stays absent, and DeepSpeed then stops on its first missing batch size. A short config
(``{zero_optimization: {stage: 2}}``) is what people write, so what the Trainer already decides
(batch sizes, accumulation, clipping, precision) is filled in as ``"auto"`` where the config is
silent. Under ZeRO-3 the final save gathers the 16-bit weights unless the config says otherwise:
without that, a full fine-tune's ``model/`` folder would hold no weights.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from ft_core import FtError

log = logging.getLogger("ft_train")

# what HF's Trainer maps from its own arguments when the value is "auto"
DECIDED_BY_TRAINER: dict[str, Any] = {
    "train_micro_batch_size_per_gpu": "auto",
    "train_batch_size": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "bf16": {"enabled": "auto"},
    "fp16": {"enabled": "auto"},
}


def read_deepspeed_config(value: str | Path | dict, config_path: Path) -> dict[str, Any]:
    """The config as a dict: a mapping as given, or a JSON file found as given or beside the run config."""
    if isinstance(value, dict):
        return copy.deepcopy(value)
    given = Path(value)
    path = given if given.is_file() else config_path.parent / given
    if not path.is_file():
        raise FtError(f"{config_path}: train.deepspeed: no file {given} (looked in the working directory and "
                      f"beside the config, {config_path.parent})")
    try:
        loaded = json.loads(path.read_text())
    except ValueError as e:
        raise FtError(f"{config_path}: train.deepspeed: {path} is not valid JSON: {e}") from None
    if not isinstance(loaded, dict):
        raise FtError(f"{config_path}: train.deepspeed: {path} holds a {type(loaded).__name__}, not a JSON object")
    return loaded


def require_deepspeed(config_path: Path) -> None:
    """Say how to install DeepSpeed where a run asks for it and it is missing (transformers' own
    error names a pip command that would fetch a CUDA torch to build it)."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise FtError(f"{config_path}: train.deepspeed needs DeepSpeed, which is not installed: "
                      "pip install --no-build-isolation deepspeed (built against the torch you have)")


def complete_deepspeed_config(value: str | Path | dict, config_path: Path) -> dict[str, Any]:
    """``value`` with the keys the Trainer decides set to ``"auto"`` where absent, and ZeRO-3's
    16-bit gather on save turned on unless set; each filled key named in one log line.

    Example:
        >>> done = complete_deepspeed_config({"zero_optimization": {"stage": 3}}, Path("run.yaml"))
        >>> done["train_micro_batch_size_per_gpu"], done["zero_optimization"]
        ('auto', {'stage': 3, 'stage3_gather_16bit_weights_on_model_save': True})
    """
    config = read_deepspeed_config(value, config_path)
    filled = [key for key in DECIDED_BY_TRAINER if key not in config]
    for key in filled:
        config[key] = copy.deepcopy(DECIDED_BY_TRAINER[key])
    zero = config.get("zero_optimization")
    if isinstance(zero, dict) and zero.get("stage") == 3 and "stage3_gather_16bit_weights_on_model_save" not in zero:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        filled.append("zero_optimization.stage3_gather_16bit_weights_on_model_save (true)")
    if filled:
        log.info("train.deepspeed: from the train: keys (\"auto\"): %s", ", ".join(filled))
    return config


def join_deepspeed(args) -> None:
    """Give DeepSpeed its view of the processes before the model is built.

    On GPUs accelerate sets it up when the run starts. CPU processes (``use_cpu``) join over gloo
    through torch alone, and DeepSpeed learns of them only when the Trainer prepares the model.
    ZeRO-3 builds the model partitioned earlier, while loading, and would count one process
    ("train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size").
    DeepSpeed reuses the process group that is already there.
    """
    if not getattr(args, "deepspeed", None):
        return
    import deepspeed
    import deepspeed.comm

    if not deepspeed.comm.is_initialized():
        deepspeed.init_distributed(auto_mpi_discovery=False)
