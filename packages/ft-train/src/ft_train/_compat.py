"""Version checks and transformers/TRL shims for ft-train (one place for all of them)."""

from __future__ import annotations

import dataclasses
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
