"""The ``train:`` keys checked against the stage's TRL config before anything loads: each key must
be a field, each value of the field's type and in a sensible range. YAML reads ``1e-4`` as a
string (it wants ``1.0e-4``); since that is what people write, such strings count as numbers."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from ft_core import FtError, did_you_mean

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
OWN_KEYS = {"stage", "output_dir", "resume"}

# key -> (lowest allowed, whether the lowest is allowed, what to say)
_RANGES: dict[str, tuple[float, bool, str]] = {
    "learning_rate": (0, False, "a positive number"),
    "num_train_epochs": (0, False, "a positive number"),
    "per_device_train_batch_size": (1, True, "a whole number of at least 1"),
    "per_device_eval_batch_size": (1, True, "a whole number of at least 1"),
    "gradient_accumulation_steps": (1, True, "a whole number of at least 1"),
    "logging_steps": (0, False, "a positive number"),
    "save_steps": (0, False, "a positive number"),
    "eval_steps": (0, False, "a positive number"),
    "save_total_limit": (1, True, "a whole number of at least 1"),
    "warmup_steps": (0, True, "zero or more"),
    "weight_decay": (0, True, "zero or more"),
    "max_grad_norm": (0, True, "zero or more"),
    "adam_epsilon": (0, False, "a positive number"),
    "seed": (0, True, "zero or more"),
    "max_length": (1, True, "a whole number of at least 1"),
    "dataloader_num_workers": (0, True, "zero or more"),
}


def as_number(value: Any) -> float | int | None:
    """``value`` as a number if it is one (or a numeric string such as YAML's ``'1e-4'``); bools are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        number = float(value)
        return int(number) if number.is_integer() and not re.search(r"[.eE]", value) else number
    return None


def _kind(hint: Any) -> tuple[str | None, bool]:
    """('bool' | 'int' | 'float' | None, whether None is allowed) of a dataclass field's type."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        kind, _ = _kind(rest[0]) if len(rest) == 1 else (None, False)
        return kind, len(rest) < len(args)
    return {bool: "bool", int: "int", float: "float"}.get(hint), False


def _coerce(key: str, value: Any, kind: str | None) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if kind in ("int", "float"):
        number = as_number(value)
        if number is None or not math.isfinite(number):
            raise ValueError("expected a whole number" if kind == "int" else "expected a number")
        if kind == "int":
            if float(number) != int(number):
                raise ValueError("expected a whole number")
            number = int(number)
        _check_range(key, number)
        return float(number) if kind == "float" else number
    return value


def _check_range(key: str, number: float) -> None:
    if key == "max_steps":
        if number == -1 or number > 0:
            return
        raise ValueError("expected a positive whole number, or -1 for no limit")
    if key in _RANGES:
        low, inclusive, wanted = _RANGES[key]
        if number < low or (number == low and not inclusive):
            raise ValueError(f"expected {wanted}")


def _field_types(config_cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_cls)
    except Exception:  # an unresolvable annotation somewhere: use the ones that are real types
        return {f.name: f.type for f in dataclasses.fields(config_cls) if not isinstance(f.type, str)}


def config_variant(stage: str, args: dict[str, Any]) -> str:
    """Which of a stage's config classes the ``train:`` keys select ('' for its only or usual one):
    dpo without a reference model (``loss_type: simpo`` or ``reference_free: true``) takes ft's
    ``RefFreeDPOConfig``, not TRL's ``DPOConfig``. Light, so a config can be checked before TRL loads."""
    if stage == "dpo" and (args.get("loss_type") == "simpo" or bool(args.get("reference_free"))):
        return "reference-free"
    return ""


def field_kinds(config_cls: type) -> dict[str, tuple[str | None, bool]]:
    """field -> (kind, whether None is allowed) of a TRL config: what the checks below need, small
    enough to keep on disk (a run keeps it, so a later config mistake is named without TRL)."""
    hints = _field_types(config_cls)
    return {f.name: _kind(hints.get(f.name)) for f in dataclasses.fields(config_cls)}


def check_trainer_args(path: Path, config_cls: type, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with numeric strings turned into numbers; an FtError names the first bad key."""
    return check_args(path, field_kinds(config_cls), config_cls.__name__, args)


def check_args(path: Path, kinds: dict[str, tuple[str | None, bool]], class_name: str,
               args: dict[str, Any]) -> dict[str, Any]:
    """``check_trainer_args`` from a config class's ``field_kinds``."""
    fields = set(kinds) | OWN_KEYS
    checked = {}
    for key, value in args.items():
        if key not in fields:
            raise FtError(f"{path}: unknown key 'train.{key}'{did_you_mean(key, fields)}; "
                          f"train keys are {class_name} fields")
        kind, optional = kinds.get(key, (None, False))
        if value is None and optional:
            checked[key] = value
            continue
        try:
            checked[key] = _coerce(key, value, kind)
        except ValueError as e:
            raise FtError(f"{path}: train.{key}: {e}, found {value!r}") from None
    return checked
