"""User-registered model aliases: short names for folders, .gguf files or hub ids, kept in
``$FT_HOME/aliases.json`` (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path

from ft_core import FtError, atomic_write_text, ft_home, read_text


def _file():
    return ft_home() / "aliases.json"


def user_aliases() -> dict[str, str]:
    """Registered alias → target."""
    path = _file()
    if not path.is_file():
        return {}
    try:
        aliases = json.loads(read_text(path, "alias file"))
    except json.JSONDecodeError as e:
        raise FtError(f"{path} is not valid JSON ({e}); fix or delete it") from None
    return aliases if isinstance(aliases, dict) else {}


def register_alias(alias: str, target: str) -> str:
    """Make ``alias`` name ``target`` (a model folder, a .gguf file or a hub id); returns the target
    as stored (folders and files as absolute paths).

    Example:
        >>> register_alias("my-sft", "runs/sft/merged")  # doctest: +SKIP
        >>> load_model("my-sft")  # doctest: +SKIP
    """
    from ft_models.embedded import EMBEDDED_MODELS
    from ft_models.sources import resolve_source

    if alias in EMBEDDED_MODELS:
        raise FtError(f"'{alias}' is a built-in alias; choose another name")
    if "/" in alias or alias.endswith(".gguf"):
        raise FtError(f"alias '{alias}' looks like a hub id or a file; use a plain name such as 'my-model'")
    kind = resolve_source(target).kind
    if kind == "alias":
        raise FtError(f"alias '{alias}' must point at a folder, a .gguf file or a hub id, not at another alias")
    if kind in ("folder", "gguf"):  # absolute, so the alias works from any directory
        target = str(Path(target).expanduser().resolve())
    aliases = user_aliases()
    aliases[alias] = target
    atomic_write_text(_file(), json.dumps(aliases, indent=2, sort_keys=True))
    return target


def remove_alias(alias: str) -> None:
    aliases = user_aliases()
    if alias not in aliases:
        raise FtError(f"no user alias '{alias}'")
    del aliases[alias]
    atomic_write_text(_file(), json.dumps(aliases, indent=2, sort_keys=True))
