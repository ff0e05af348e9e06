"""User-registered model aliases: short names for folders, .gguf files or hub ids, kept in
``$FT_HOME/aliases.json`` (written atomically)."""

from __future__ import annotations

import json

from ft_core import FtError, atomic_write_text, ft_home


def _file():
    return ft_home() / "aliases.json"


def user_aliases() -> dict[str, str]:
    """Registered alias → target."""
    path = _file()
    if not path.is_file():
        return {}
    try:
        aliases = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FtError(f"{path} is not valid JSON ({e}); fix or delete it") from None
    return aliases if isinstance(aliases, dict) else {}


def register_alias(alias: str, target: str) -> None:
    """Make ``alias`` name ``target`` (a model folder, a .gguf file or a hub id).

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
    if resolve_source(target).kind == "alias":
        raise FtError(f"alias '{alias}' must point at a folder, a .gguf file or a hub id, not at another alias")
    aliases = user_aliases()
    aliases[alias] = target
    atomic_write_text(_file(), json.dumps(aliases, indent=2, sort_keys=True))


def remove_alias(alias: str) -> None:
    aliases = user_aliases()
    if alias not in aliases:
        raise FtError(f"no user alias '{alias}'")
    del aliases[alias]
    atomic_write_text(_file(), json.dumps(aliases, indent=2, sort_keys=True))
