"""Version checks and transformers/TRL shims for ft-train (one place for all of them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ft_core import check_transformers

check_transformers("ft-train")

_RENAMED = {"gradient_checkpointing": "activation_checkpointing",
            "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}


def checkpointing_names(config_cls: type, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with gradient checkpointing under the name the installed transformers reads.

    transformers 5.2x renamed ``gradient_checkpointing*`` to ``activation_checkpointing*`` and warns
    on the old names, which TRL 1.16's configs still default to (a FutureWarning on every run).
    Passing the new name keeps both in step, silently. Delete when the transformers floor has the
    new name and TRL uses it.
    """
    fields = {f.name for f in dataclasses.fields(config_cls)}
    if "activation_checkpointing" not in fields:
        return args
    renamed = {_RENAMED.get(k, k): v for k, v in args.items()}
    if "activation_checkpointing" not in renamed:
        default = next(f.default for f in dataclasses.fields(config_cls) if f.name == "gradient_checkpointing")
        renamed["activation_checkpointing"] = default  # the stage's own default, under the new name
    return renamed


def resume_loads_every_adapter(trainer) -> None:
    """Make ``trainer``'s resume load the checkpoint's top-level adapter beside its subfolders.

    TRL 1.16's DPOTrainer keeps its reference adapter as a second PEFT adapter, saved in ``ref/``
    of each checkpoint. transformers before 5.23 then loads only the subfolders on resume, and
    the trained adapter silently restarts from its initial weights: a resumed dpo run's loss went
    back to ln 2 on 5.0.0. 5.23 loads the top-level adapter as ``default`` too; this does the
    same. Delete when the transformers floor is 5.23.
    """
    import transformers
    from packaging.version import Version
    from transformers.utils import ADAPTER_SAFE_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME

    load = getattr(trainer, "_load_from_checkpoint", None)
    if load is None or Version(transformers.__version__) >= Version("5.23"):
        return

    def has_adapter(folder: Path) -> bool:  # the files the Trainer itself looks for
        return any((folder / name).is_file() for name in (ADAPTER_SAFE_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME))

    def load_every_adapter(resume_from_checkpoint, model=None):
        load(resume_from_checkpoint, model)
        model = trainer.model if model is None else model
        folder = Path(resume_from_checkpoint)
        if not (hasattr(model, "load_adapter") and hasattr(model, "active_adapters") and has_adapter(folder)):
            return
        if not any(has_adapter(sub) for sub in folder.iterdir() if sub.is_dir()):
            return  # transformers loaded the one adapter itself
        active = model.active_adapters[0]
        model.load_adapter(str(folder), "default", is_trainable=active == "default")
        model.set_adapter(active)

    trainer._load_from_checkpoint = load_every_adapter
