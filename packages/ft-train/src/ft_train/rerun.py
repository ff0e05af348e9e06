"""What a rerun into an existing output_dir may do: continue the same run, or stop and say what
changed. Only the step budget may change silently (train longer); anything else would resume a
run with settings it was not trained with."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import yaml

from ft_core import FtError

RerunMode = Literal["auto", "resume", "restart"]
BUDGET_KEYS = {"train.max_steps", "train.num_train_epochs", "train.resume"}
# what a run writes into its output_dir; --restart removes these and nothing else
RUN_OUTPUTS = ("adapter", "model", "adapter-init", "metrics.jsonl", "loss.png", "metrics.png", "run_config.yaml")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} for every leaf of nested dicts (lists are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_keys(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """key → (recorded, now) for every setting that differs, the step budget aside."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k) and k not in BUDGET_KEYS}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def has_progress(out: Path) -> bool:
    return any(out.glob("checkpoint-*")) or (out / "adapter").is_dir() or (out / "model").is_dir()


def clear_run(out: Path) -> None:
    """Remove what an earlier run wrote into ``out`` (its checkpoints and results), nothing else."""
    for path in [*out.glob("checkpoint-*"), *(out / name for name in RUN_OUTPUTS)]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _recorded(path: Path) -> dict:
    """The recorded settings, with today's defaults for keys an older ft did not record (so an
    upgrade alone is not a change)."""
    from pydantic import ValidationError

    from ft_train.config import RunConfig

    try:
        old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    try:
        return RunConfig.model_validate(old).model_dump(mode="json")
    except ValidationError:
        return old if isinstance(old, dict) else {}


def check_rerun(config_path: Path, out: Path, recorded: Path, now: dict, mode: RerunMode) -> None:
    """Stop a rerun whose settings differ from the recorded ones unless ``mode`` says what to do
    (``resume``: go on with the new settings; ``restart``: the caller clears the run with
    ``clear_run``). Writes nothing."""
    if mode != "auto" or not recorded.is_file() or not has_progress(out):
        return
    changed = changed_keys(_recorded(recorded), now)
    if changed:
        listed = "; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, (a, b) in list(changed.items())[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise FtError(f"{config_path}: {out} holds a run trained with other settings ({listed}{more}); rerun with "
                      "--resume to continue it with the new settings, or --restart to start over (removes its "
                      "checkpoints and results)")
